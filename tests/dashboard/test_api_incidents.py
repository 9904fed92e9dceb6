"""GET /api/v1/incidents over real HTTP: every open finding in exactly one incident, root first; clear 4xx."""
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


def test_incidents_partition_the_open_findings_root_first(api):
    findings = api.get("/api/v1/findings", params={"status": "open"}).json()
    r = api.get("/api/v1/incidents")
    assert r.status_code == 200
    incidents = r.json()
    members = [f["fingerprint"] for i in incidents for f in i["findings"]]
    assert sorted(members) == sorted(f["fingerprint"] for f in findings)  # each exactly once
    for inc in incidents:
        assert inc["findings"][0]["role"] == "root" and inc["findings"][0]["fingerprint"] == inc["root"]["fingerprint"]
        assert inc["status"] == "open" and inc["severity"] in ("error", "warning", "info")
    # traffic-hurting incidents lead
    with_impact = [bool(i["impact"]["rps"]) or bool(i["impact"]["slos"]) for i in incidents]
    assert with_impact == sorted(with_impact, reverse=True)
    one = api.get(f"/api/v1/incidents/{incidents[0]['id']}")
    assert one.status_code == 200 and one.json()["id"] == incidents[0]["id"]
    assert "evidence" in one.json()["root"]  # the detail carries whole findings
    resolved = api.get("/api/v1/incidents", params={"status": "resolved"}).json()
    assert {f["code"] for i in resolved for f in i["findings"]} == {"MS1101"}


def test_bad_incident_requests_are_clear(api):
    r = api.get("/api/v1/incidents", params={"status": "sleeping"})
    assert r.status_code == 400 and r.json()["param"] == "status"
    assert api.get("/api/v1/incidents", params={"colour": "red"}).json()["param"] == "colour"
    assert api.get("/api/v1/incidents/inc-000000000000").status_code == 404
