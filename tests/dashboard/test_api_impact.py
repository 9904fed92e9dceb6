"""POST /api/v1/impact over real HTTP: a prediction from live config + a window of edges; bad bodies are 400."""
from __future__ import annotations

import httpx
import pytest

from dashboard.sample import bookinfo_snapshot
from dashboard.server import start
from dashboard.snapshot_source import SnapshotSource
from mesh.config import Snapshot, load_paths
from tests.diagnose.whatif.test_replay import BOOKINFO, _window

CSRF = {"X-Meshscope-CSRF": "1"}
STRICT = ("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
          "metadata: {name: default, namespace: bookinfo}\nspec: {mtls: {mode: STRICT}}\n")


class _Backend:
    """Live config and rates as the running stack's backend hands them to the API."""

    def __init__(self, rates):
        self._snap = Snapshot(load_paths([BOOKINFO]).objects)
        self._rates = rates
        self.windows: list[float] = []

    def snapshot(self):  # noqa: ANN201
        return self._snap

    def rates(self, window_s, end=None):  # noqa: ANN001, ANN201
        self.windows.append(window_s)
        return self._rates


class LiveLike(SnapshotSource):
    def __init__(self, backend):  # noqa: ANN001
        super().__init__(bookinfo_snapshot())
        self.backend = backend


@pytest.fixture(scope="module")
def api():
    backend = _Backend(_window())
    ui = start(LiveLike(backend), port=0)
    with httpx.Client(base_url=ui.url, timeout=30, headers=CSRF) as client:
        yield client, backend
    ui.stop()


def test_strict_prediction_names_the_plaintext_edge(api):
    client, backend = api
    r = client.post("/api/v1/impact", json={"yaml": STRICT, "window": "30m"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert backend.windows[-1] == 1800
    assert body["breaks"] and body["broken_rps"] == pytest.approx(1.5)
    assert [(f["code"], f["evidence"]["edge_key"]) for f in body["edge_findings"]] == [
        ("MS5001", "legacy/curl->bookinfo/details-v1")]
    assert "last 30m" in body["edge_findings"][0]["message"]
    # the bar lets 1.5 rps through
    assert not client.post("/api/v1/impact", json={"yaml": STRICT, "max_broken_rps": 2}).json()["breaks"]
    # raw YAML body works too, and the live config is unchanged afterwards
    raw = client.post("/api/v1/impact?window=1h", content=STRICT, headers={"Content-Type": "application/yaml"})
    assert raw.status_code == 200 and raw.json()["broken_rps"] == pytest.approx(1.5)
    assert not backend.snapshot().of_kind("PeerAuthentication")


def test_file_that_does_not_load_gets_findings_and_no_prediction(api):
    client, _ = api
    body = client.post("/api/v1/impact", json={"files": [{"name": "bad.yaml", "yaml": "kind: [\n"}]}).json()
    assert body["predicted"] is False and body["impacts"] == []
    assert [f["code"] for f in body["findings"]] == ["MS5005"] and "bad.yaml:" in body["findings"][0]["message"]


@pytest.mark.parametrize("payload, param", [({"yaml": STRICT, "window": "forever"}, "window"),
                                            ({"yaml": STRICT, "window": "0s"}, "window"),
                                            ({"yaml": STRICT, "max_broken_rps": "lots"}, "max_broken_rps"),
                                            ({"yaml": STRICT, "max_broken_rps": -1}, "max_broken_rps"),
                                            ({"yaml": ""}, "yaml"), ({"files": "x"}, "files"),
                                            ({"yaml": STRICT, "colour": 1}, "colour")])
def test_bad_requests_are_400_naming_the_field(api, payload, param):
    client, _ = api
    r = client.post("/api/v1/impact", json=payload)
    assert r.status_code == 400 and r.json()["param"] == param


def test_source_without_live_parts_is_503():
    ui = start(SnapshotSource(bookinfo_snapshot()), port=0)
    try:
        r = httpx.post(f"{ui.url}/api/v1/impact", json={"yaml": STRICT}, headers=CSRF, timeout=30)
        assert r.status_code == 503 and "live config" in r.json()["error"]
    finally:
        ui.stop()


def test_canary_verdicts_over_http():
    """GET /api/v1/canary: a regressing version is rolled back with the evidence, over a real server."""
    from tests.diagnose.canary.test_verdict import _frame, _version

    backend = _Backend(_frame(_version("reviews", "v1", 4000, 0.005, 40), _version("reviews", "v2", 1000, 0.08, 40)))
    ui = start(LiveLike(backend), port=0)
    try:
        body = httpx.get(f"{ui.url}/api/v1/canary", params={"window": "600"}, timeout=30).json()
        [v] = body["verdicts"]
        assert (v["stable"], v["candidate"], v["verdict"]) == ("v1", "v2", "rollback")
        assert [f["code"] for f in body["findings"]] == ["MS5010"]
        assert httpx.get(f"{ui.url}/api/v1/canary", params={"window": "0"}, timeout=30).json()["param"] == "window"
    finally:
        ui.stop()
