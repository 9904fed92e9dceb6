"""GET /api/v1/ingest/rejects over real HTTP: the collectors' refusals, per reason, with samples."""
from __future__ import annotations

import httpx
import pytest

from collector import selfmetrics
from dashboard.sample import bookinfo_snapshot
from dashboard.server import start
from dashboard.snapshot_source import SnapshotSource


@pytest.fixture(scope="module")
def api():
    ui = start(SnapshotSource(bookinfo_snapshot()), port=0)
    with httpx.Client(base_url=ui.url, timeout=10) as client:
        yield client
    ui.stop()


def test_rejects_are_listed_with_reason_and_escaped_sample(api):
    selfmetrics.reject("access_log", "/var/log/x.log", "bad_timestamp", b'<script>"\xff', line=7, message="impossible")
    body = api.get("/api/v1/ingest/rejects", params={"source": "access_log", "limit": 5}).json()
    top = body["recent"][0]
    assert top["origin"] == "/var/log/x.log" and top["reason"] == "bad_timestamp" and top["line"] == 7
    assert top["sample"] == '<script>"\\xff'  # bytes that are not UTF-8 shown escaped; JSON-encoded, never raw HTML
    assert body["by_reason"]["access_log"]["bad_timestamp"] >= 1
    assert api.get("/api/v1/ingest/rejects", params={"limit": 0}).status_code == 400
    assert api.get("/api/v1/ingest/rejects", params={"source": "nope"}).status_code == 400
