"""The JSON API over real HTTP: data, filters, and clear 4xx errors for bad requests."""
from urllib.parse import quote

import httpx
import pytest

from dashboard.sample import bookinfo_snapshot
from dashboard.server import start
from dashboard.snapshot_source import SnapshotSource


@pytest.fixture(scope="module")
def api():
    ui = start(SnapshotSource(bookinfo_snapshot()), port=0)
    with httpx.Client(base_url=ui.url, timeout=10) as client:
        yield client
    ui.stop()


def test_graph(api):
    r = api.get("/api/v1/graph", params={"graphType": "workload", "namespaces": "istio-system", "window": "300"})
    assert r.status_code == 200
    body = r.json()
    assert body["graphType"] == "workload" and body["namespaces"] == ["bookinfo", "istio-system"]
    assert {e["data"]["id"] for e in body["elements"]} >= {"wl:istio-system/istio-ingressgateway"}
    assert len(body["elements"]) == 5


@pytest.mark.parametrize("path, params, param", [
    ("/api/v1/graph", {"graphType": "mesh"}, "graphType"),
    ("/api/v1/graph", {"window": "soon"}, "window"),
    ("/api/v1/graph", {"nodes": "1"}, "nodes"),
    ("/api/v1/findings", {"severity": "fatal"}, "severity"),
    ("/api/v1/findings", {"colour": "red"}, "colour"),
    ("/api/v1/traces", {"min_duration_ms": "-1"}, "min_duration_ms"),
    ("/api/v1/traces", {"status": "weird"}, "status"),
    ("/api/v1/report", {"format": "docx"}, "format"),
])
def test_bad_parameters_get_400_naming_them(api, path, params, param):
    r = api.get(path, params=params)
    assert r.status_code == 400
    assert r.json()["param"] == param and param in r.json()["error"]


def test_findings_filters(api):
    assert {f["code"] for f in api.get("/api/v1/findings").json()} == {"MS2001", "MS3002", "MS1004", "MS4001", "MS1101"}
    assert {f["code"] for f in api.get("/api/v1/findings", params={"severity": "error,warning", "category": "route"}).json()} == {"MS1004"}
    assert {f["code"] for f in api.get("/api/v1/findings", params={"status": "resolved"}).json()} == {"MS1101"}
    assert {f["code"] for f in api.get("/api/v1/findings", params={"namespace": "istio-system"}).json()} == {"MS2001"}
    one = api.get("/api/v1/findings").json()[1]
    assert "#" in one["fingerprint"]  # the YAML path: must be percent-encoded, or a URL takes it as a fragment
    detail = api.get(f"/api/v1/findings/{quote(one['fingerprint'], safe='')}")
    assert detail.status_code == 200 and detail.json()["code"] == one["code"]
    assert api.get("/api/v1/findings/MS9999|nothing|").status_code == 404


def test_slos_traces_config(api):
    slos = api.get("/api/v1/slos").json()
    assert {s["name"] for s in slos} == {"ratings-availability", "productpage-latency", "details-availability"}
    assert next(s for s in slos if s["name"] == "ratings-availability")["alert"] == "page"
    traces = api.get("/api/v1/traces", params={"status": "error", "limit": 3}).json()
    assert len(traces) == 3 and all(t["status"] == "error" for t in traces)
    spans = api.get(f"/api/v1/traces/{traces[0]['trace_id']}").json()
    assert any(s["response_flags"] == "UC" for s in spans)
    assert api.get("/api/v1/traces/deadbeef").status_code == 404
    kinds = {o["kind"] for o in api.get("/api/v1/config").json()}
    assert kinds == {"DestinationRule", "VirtualService", "PeerAuthentication"}


def test_report_download(api):
    r = api.get("/api/v1/report", params={"format": "md"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/markdown")
    assert 'filename="meshscope-report.md"' in r.headers["content-disposition"]
    assert "MS2001" in r.text


def test_scenarios_need_a_bundled_mesh(api):
    assert api.get("/api/v1/scenarios").json() == []
    assert api.post("/api/v1/scenarios/mtls-mismatch").status_code == 403  # no same-origin proof
    r = api.post("/api/v1/scenarios/mtls-mismatch", headers={"X-Meshscope-CSRF": "1"})
    assert r.status_code == 503 and "meshscope up" in r.json()["error"]


def _slos_count(api) -> float:
    for line in api.get("/metrics").text.splitlines():
        if line.startswith("meshscope_ui_http_requests_total{") and 'route="/api/v1/slos"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_healthz_and_self_metrics_count_requests(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    before = _slos_count(api)
    api.get("/api/v1/slos")
    api.get("/api/v1/slos")
    assert _slos_count(api) == before + 2
    assert "meshscope_ui_http_request_duration_seconds_bucket" in api.get("/metrics").text


class _Broken(SnapshotSource):
    """A source whose backend fails, as a live source can when a part is down."""

    def slos(self):
        raise RuntimeError("SLO engine is not running")


def test_a_failing_source_gives_json_500_not_a_traceback(ui_server):
    ui = ui_server(_Broken(bookinfo_snapshot()))
    r = httpx.get(ui.url + "/api/v1/slos")
    assert r.status_code == 500
    assert r.json() == {"error": "internal error: RuntimeError: SLO engine is not running"}


class _NaNSource(SnapshotSource):
    """A quantile over no samples is NaN; the API must still answer valid JSON."""

    def slos(self):
        return [{"name": "x", "budget_remaining": float("nan"), "burn_rates": {"1h": float("inf")}, "objective": 99.0}]


def test_nan_and_inf_become_null(ui_server):
    ui = ui_server(_NaNSource(bookinfo_snapshot()))
    r = httpx.get(ui.url + "/api/v1/slos")
    assert r.status_code == 200 and "NaN" not in r.text and "Infinity" not in r.text
    assert r.json() == [{"name": "x", "budget_remaining": None, "burn_rates": {"1h": None}, "objective": 99.0}]
