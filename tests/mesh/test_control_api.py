"""The control API's HTTP contract on the shared mesh: status, config, and clear errors for bad requests."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from mesh.config import load_text
from mesh.control_api import ControlClient, ControlError

pytestmark = pytest.mark.e2e


def call(mesh, method: str, path: str, body: bytes | None = None, token: str | None = None) -> tuple[int, dict]:
    """One raw request; `token` defaults to the mesh's own ("" sends none)."""
    token = mesh.control_token if token is None else token
    headers = {"authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(f"http://127.0.0.1:{mesh.control.port}{path}", data=body, method=method,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_status_and_config_describe_the_running_mesh(bundled_mesh):
    client = ControlClient(f"http://127.0.0.1:{bundled_mesh.control.port}", token=bundled_mesh.control_token)
    st = client.status()
    assert st["gateway"] == bundled_mesh.gateway_url + "/productpage"
    assert {w["name"] for w in st["workloads"]} == {w.name for w in bundled_mesh.workloads}
    objects = load_text(client.config_yaml(), "<mesh>", exclude_namespaces=frozenset()).objects
    assert {o.ref for o in objects} == {o.ref for o in bundled_mesh.objects}
    assert [s["name"] for s in client.scenarios()["scenarios"]][:2] == ["mtls-mismatch", "missing-subset"]


def test_bad_requests_get_clear_errors(bundled_mesh, mesh_config):
    code, body = call(bundled_mesh, "POST", "/v1/apply", b"kind: [unclosed")
    assert code == 400 and body["problems"] and "<request>:1" in body["problems"][0]
    code, body = call(bundled_mesh, "POST", "/v1/apply", b"# nothing here\n")
    assert code == 400 and "no objects" in body["error"]
    code, body = call(bundled_mesh, "POST", "/v1/scenarios/not-a-scenario", b"")
    assert code == 404 and "unknown scenario" in body["error"]
    code, body = call(bundled_mesh, "GET", "/v1/nope")
    assert code == 404
    with pytest.raises(ControlError) as exc:
        ControlClient(f"http://127.0.0.1:{bundled_mesh.control.port}", token=bundled_mesh.control_token).delete(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ghost, namespace: bookinfo}\n",
            "ghost.yaml")
    assert exc.value.status == 409 and "VirtualService bookinfo/ghost not found" in exc.value.problems


@pytest.mark.parametrize("token", ["", "not-the-token", "SCHEME"], ids=["none", "wrong", "basic-scheme"])
@pytest.mark.parametrize("method,path,body", [("GET", "/v1/status", None), ("GET", "/v1/config", None),
                                              ("POST", "/v1/scenarios/fault-abort", b""),
                                              ("POST", "/v1/delete", b"kind: VirtualService\n"),
                                              ("DELETE", "/v1/scenario", None)])
def test_every_endpoint_wants_the_token(bundled_mesh, token, method, path, body):
    before = (bundled_mesh.scenario, [o.ref for o in bundled_mesh.objects])
    if token == "SCHEME":  # the right secret, but not as a bearer token
        req = urllib.request.Request(f"http://127.0.0.1:{bundled_mesh.control.port}{path}", data=body, method=method,
                                     headers={"authorization": f"Basic {bundled_mesh.control_token}"})
        try:
            urllib.request.urlopen(req, timeout=30)
            code, payload = 200, {}
        except urllib.error.HTTPError as e:
            code, payload = e.code, json.loads(e.read())
    else:
        code, payload = call(bundled_mesh, method, path, body, token=token)
    assert code == 401
    assert set(payload) == {"error"} and "token" in payload["error"]  # no data, just the reason
    assert (bundled_mesh.scenario, [o.ref for o in bundled_mesh.objects]) == before  # nothing changed


def test_the_token_file_is_private_and_matches(bundled_mesh):
    import stat

    path = bundled_mesh.control_token_path
    assert path == bundled_mesh.data_dir / "control.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == bundled_mesh.control_token and len(bundled_mesh.control_token) >= 32
    assert bundled_mesh.status()["control_token_file"] == str(path)
