"""GET /api/v1/graph views of a large mesh over real HTTP: collapse, expand in place, focus on a finding or incident."""
import httpx
import pytest

from dashboard.sample import synthetic_snapshot
from dashboard.server import start
from dashboard.snapshot_source import SnapshotSource

T0 = 1_760_000_000.0


def with_incident(snap):
    """A failing edge blamed on a DestinationRule, as the diagnoser would report it."""
    edges = snap["graphs"]["workload"]["edges"]
    bad = next(e for e in edges if e["health"] == "failing")
    ns = bad["target"].split(":", 1)[1].split("/", 1)[0]
    snap["findings"] = [{
        "code": "MS2001", "severity": "error", "category": "mtls", "message": "callers disable TLS, server requires it",
        "resource": {"kind": "DestinationRule", "namespace": ns, "name": "svc-dr", "path": "spec/trafficPolicy/tls/mode",
                     "source": "dr.yaml:7"},
        "related": [], "evidence": {}, "impact": {"rps": 1.0}, "status": "open", "first_seen": T0, "last_seen": T0,
        "elements": [bad["id"], bad["source"], bad["target"]], "fingerprint": "MS2001|dr|x"}]
    return snap, bad


@pytest.fixture(scope="module")
def api():
    snap, bad = with_incident(synthetic_snapshot(400, seed=3, namespaces=8))
    ui = start(SnapshotSource(snap), port=0)
    with httpx.Client(base_url=ui.url, timeout=30) as client:
        full = client.get("/api/v1/graph").json()["elements"]
        yield client, full, bad
    ui.stop()


def split(elements):
    return ([e["data"] for e in elements if "source" not in e["data"]],
            [e["data"] for e in elements if "source" in e["data"]])


def test_collapse_by_namespace_sums_traffic_and_expand_opens_one_in_place(api):
    client, full, _ = api
    r = client.get("/api/v1/graph", params={"collapse": "namespace"})
    assert r.status_code == 200
    nodes, edges = split(r.json()["elements"])
    assert sorted(n["id"] for n in nodes) == [f"agg:ns:ns-{i}" for i in range(8)]
    assert all(n["type"] == "aggregate" and n["members"] == 50 for n in nodes)
    internal = sum(sum(n["rps_internal"].values()) for n in nodes)
    assert sum(e["rps"] for e in edges) + internal == pytest.approx(sum(e["rps"] for e in split(full)[1]))
    assert any("grouped by namespace" in note for note in r.json()["notes"])
    opened = client.get("/api/v1/graph", params={"collapse": "namespace", "expand": "agg:ns:ns-2"}).json()
    o_nodes, _ = split(opened["elements"])
    ids = {n["id"] for n in o_nodes}
    assert {n["id"] for n in nodes} - {"agg:ns:ns-2"} <= ids and "agg:ns:ns-2" not in ids
    assert len(ids) == 7 + 50 and all(n["namespace"] == "ns-2" for n in o_nodes if n["type"] != "aggregate")


def test_focus_on_a_finding_and_on_its_incident(api):
    client, full, bad = api
    fp = client.get("/api/v1/findings").json()[0]["fingerprint"]
    for hops in (0, 1):
        r = client.get("/api/v1/graph", params={"focus": fp, "hops": str(hops)})
        assert r.status_code == 200
        nodes, edges = split(r.json()["elements"])
        ids = {n["id"] for n in nodes}
        assert bad["id"] in {e["id"] for e in edges} and {bad["source"], bad["target"]} <= ids
        cfg = [n for n in nodes if n["type"] == "config"]
        assert len(cfg) == 1 and cfg[0]["file"] == "dr.yaml:7"
        assert {(e["source"], e["target"]) for e in edges if e["protocol"] == "blames"} == {
            (cfg[0]["id"], bad["source"]), (cfg[0]["id"], bad["target"])}
        assert len(nodes) < len(split(full)[0])
        assert any("incident view" in note for note in r.json()["notes"])
    incident = client.get("/api/v1/incidents").json()[0]["id"]
    by_incident = client.get("/api/v1/graph", params={"focus": incident, "hops": "1"}).json()
    assert bad["id"] in {e["data"]["id"] for e in by_incident["elements"]}
    # focus and collapse compose: the incident view, grouped
    grouped = client.get("/api/v1/graph", params={"focus": fp, "collapse": "namespace"}).json()
    assert any(e["data"].get("type") == "config" for e in grouped["elements"])


@pytest.mark.parametrize("params, param", [
    ({"collapse": "cluster"}, "collapse"),
    ({"expand": "agg:ns:ns-1"}, "expand"),
    ({"collapse": "namespace", "expand": "wl:ns-1/svc-1-v1"}, "expand"),
    ({"collapse": "namespace", "expand": "agg:ns:nowhere"}, "expand"),
    ({"focus": "MS0000|nothing", "hops": "1"}, "focus"),
    ({"focus": "MS2001|dr|x", "hops": "9"}, "hops"),
    ({"focus": "MS2001|dr|x", "hops": "one"}, "hops"),
    ({"hops": "2"}, "hops"),
])
def test_bad_view_parameters_get_400_naming_them(api, params, param):
    client, _, _ = api
    r = client.get("/api/v1/graph", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["param"] == param and param in r.json()["error"]
