"""A deletion through every entry point what-if has: POST /api/v1/impact, `meshscope analyze --delete`,
`meshscope delete --dry-run -f`, and the Config page's preview box (its Dash callback over real HTTP).

The live config routes reviews to subsets v1/v2, so deleting the reviews DestinationRule breaks
productpage -> reviews (5 req/s in the window); an unknown name is refused naming it. At 67169a0 none of
these entry points took a deletion (the API refused the `delete` field, the CLI had no such option).
"""
from __future__ import annotations

import json

import httpx
import pytest

from dashboard.server import start
from diagnose.whatif.replay import overlay
from mesh.config import Snapshot
from tests.dashboard.test_api_impact import CSRF, LiveLike, _Backend
from tests.diagnose.whatif.test_deletion import ROUTED, _objs
from tests.diagnose.whatif.test_replay import _live, _window
from tests.meshscope.test_impact_cli import _cli

DR = "DestinationRule/bookinfo/reviews"
HOST = "reviews.bookinfo.svc.cluster.local"


class _Routed(_Backend):
    def __init__(self, rates):  # noqa: ANN001
        super().__init__(rates)
        self._snap = Snapshot(overlay(_live(), _objs(ROUTED)))


@pytest.fixture(scope="module")
def ui():
    backend = _Routed(_window())
    server = start(LiveLike(backend), port=0)
    yield server.url, backend
    server.stop()


def test_api_predicts_a_deletion_and_names_the_object(ui):
    url, backend = ui
    r = httpx.post(f"{url}/api/v1/impact", json={"delete": [DR]}, headers=CSRF, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["predicted"] and body["breaks"] and body["broken_rps"] == pytest.approx(5.0)
    [f] = [f for f in body["edge_findings"] if f["code"] == "MS5003"]
    assert f["evidence"]["edge_key"] == f"bookinfo/productpage-v1->{HOST}"
    assert "[deleting DestinationRule bookinfo/reviews" in f["message"] and f["evidence"]["deleted"]
    assert body["deleted"][0]["kind"] == "DestinationRule" and body["deleted"][0]["name"] == "reviews"
    assert backend.snapshot().of_kind("DestinationRule")  # nothing deleted for real
    # the object form and a raw-body request with ?delete= say the same
    obj = {"kind": "DestinationRule", "namespace": "bookinfo", "name": "reviews"}
    assert httpx.post(f"{url}/api/v1/impact", json={"delete": [obj]}, headers=CSRF, timeout=60).json()["broken_rps"] == \
        pytest.approx(5.0)
    raw = httpx.post(f"{url}/api/v1/impact?delete={DR}", content="", timeout=60,
                     headers={**CSRF, "Content-Type": "application/yaml"})
    assert raw.status_code == 200 and raw.json()["broken_rps"] == pytest.approx(5.0), raw.text


def test_api_unknown_object_is_named_and_bad_fields_are_400(ui):
    url, _ = ui
    body = httpx.post(f"{url}/api/v1/impact", json={"delete": ["DestinationRule/bookinfo/reviewz"]}, headers=CSRF,
                      timeout=60).json()
    assert body["predicted"] is False and body["breaks"] and body["impacts"] == []
    [f] = body["findings"]
    assert f["code"] == "MS5009" and "DestinationRule bookinfo/reviewz" in f["message"] and "did you mean reviews?" in f["message"]
    for payload, param in (({"delete": 3}, "delete"), ({"delete": [3]}, "delete[0]"), ({"delete": []}, "yaml")):
        r = httpx.post(f"{url}/api/v1/impact", json=payload, headers=CSRF, timeout=60)
        assert r.status_code == 400 and r.json()["param"] == param, (payload, r.text)


def test_cli_analyze_delete_and_delete_dry_run(ui, tmp_path):
    url, _ = ui
    r = _cli("analyze", "--delete", "dr/bookinfo/reviews", "--from", url)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "deleting DestinationRule bookinfo/reviews" in r.stdout and f"MS5003 bookinfo/productpage-v1 -> {HOST}" in r.stdout
    assert "BREAKS" in r.stdout
    r = _cli("analyze", "--delete", DR, "--from", url, "--max-broken-rps", "6", "--format", "json")
    assert r.returncode == 0 and json.loads(r.stdout)["deleted"][0]["name"] == "reviews"
    f = tmp_path / "dr.yaml"  # what `kubectl delete -f` would be given: only kind and names matter
    f.write_text("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews, namespace: bookinfo}\n"
                 "spec: {host: reviews}\n")
    r = _cli("delete", "--dry-run", "-f", str(f), "--from", url)
    assert r.returncode == 1 and "MS5003" in r.stdout and "deleting DestinationRule bookinfo/reviews" in r.stdout, r.stdout
    r = _cli("analyze", "--delete", "DestinationRule/bookinfo/nope", "--from", url)
    assert r.returncode == 1 and "MS5009" in r.stdout and "bookinfo/nope" in r.stdout, r.stdout


def test_config_page_preview_box_takes_a_deletion(ui):
    """The preview callback as the browser calls it (Dash's update endpoint), with only the Delete field."""
    url, _ = ui
    with httpx.Client(base_url=url, timeout=60, headers=CSRF) as c:
        c.get("/config")
        body = {"output": "cfg-preview-result.children", "outputs": {"id": "cfg-preview-result", "property": "children"},
                "inputs": [{"id": "cfg-preview-run", "property": "n_clicks", "value": 1}],
                "state": [{"id": "cfg-preview-yaml", "property": "value", "value": ""},
                          {"id": "cfg-preview-window", "property": "value", "value": "1h"},
                          {"id": "cfg-preview-delete", "property": "value", "value": DR}],
                "changedPropIds": ["cfg-preview-run.n_clicks"]}
        r = c.post("/_dash-update-component", json=body)
        assert r.status_code == 200, r.text
        text = json.dumps(r.json())
        assert "BREAKS: 5.00 req/s would newly fail" in text and "Deleting DestinationRule bookinfo/reviews" in text
        assert "MS5003" in text
