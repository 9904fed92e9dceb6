"""GET /api/v1/changes over real HTTP, over a real journal; bad parameters are 400 naming them."""
from __future__ import annotations

import httpx
import pytest

from dashboard.sample import bookinfo_snapshot
from dashboard.server import start
from dashboard.snapshot_source import SnapshotSource
from mesh.journal import Journal, content_of

HOSTILE = "<script>alert(1)</script>"


class JournalSource(SnapshotSource):
    """The sample snapshot plus a config journal (what the live source reads from the data dir)."""

    def __init__(self, journal: Journal):
        super().__init__(bookinfo_snapshot())
        self._journal = journal

    def changes(self, **query):  # noqa: ANN003, ANN201
        return self._journal.query(**query)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    j = Journal(tmp_path_factory.mktemp("journal") / "journal.sqlite")
    src = JournalSource(j)
    base = src.now()
    j.observe("DestinationRule", "bookinfo", "reviews", content_of({"host": "reviews"}), at=base - 600, who="a")
    j.observe("DestinationRule", "bookinfo", "reviews", content_of({"host": "reviews", "x": HOSTILE}),
              at=base - 60, who=f"meshscope apply -f {HOSTILE}.yaml")
    j.observe("VirtualService", "shop", "cart", content_of({"hosts": ["cart"]}), at=base - 30, who="helm (Apply)")
    j.gap(None, until=base - 10, reason="watch expired (410 Gone)")
    ui = start(src, port=0)
    with httpx.Client(base_url=ui.url, timeout=10) as client:
        yield client, base
    ui.stop()


def test_changes_filters_and_window(api):
    client, base = api
    every = client.get("/api/v1/changes").json()
    assert [c["op"] for c in every] == ["gap", "create", "update", "create"]
    dr = client.get("/api/v1/changes", params={"kind": "DestinationRule", "namespace": "bookinfo"}).json()
    assert [c["op"] for c in dr] == ["gap", "update", "create"]  # the gap concerns every object
    assert dr[1]["diff"] == [{"path": "spec.x", "old": None, "new": HOSTILE}]
    assert dr[1]["who"] == f"meshscope apply -f {HOSTILE}.yaml"  # JSON carries it as data; the page escapes it
    recent = client.get("/api/v1/changes", params={"since": "-120"}).json()
    assert [c["ref"] for c in recent if c["op"] != "gap"] == ["VirtualService shop/cart", "DestinationRule bookinfo/reviews"]
    old = client.get("/api/v1/changes", params={"until": str(base - 100)}).json()
    assert [c["op"] for c in old] == ["create"]
    assert len(client.get("/api/v1/changes", params={"limit": "1"}).json()) == 1


@pytest.mark.parametrize("params, param", [({"since": "yesterday"}, "since"), ({"until": "inf"}, "until"),
                                           ({"limit": "0"}, "limit"), ({"colour": "red"}, "colour"),
                                           ({"since": "200", "until": "100"}, "until")])
def test_bad_change_queries_are_400(api, params, param):
    client, _ = api
    r = client.get("/api/v1/changes", params=params)
    assert r.status_code == 400 and r.json()["param"] == param


def test_a_source_without_journal_is_503():
    ui = start(SnapshotSource(bookinfo_snapshot()), port=0)
    try:
        r = httpx.get(ui.url + "/api/v1/changes", timeout=10)
        assert r.status_code == 503 and "journal" in r.json()["error"]
    finally:
        ui.stop()
