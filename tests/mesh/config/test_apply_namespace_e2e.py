"""`meshscope apply -n` on the shared bundled mesh: a file without a namespace lands where kubectl would put it."""
from __future__ import annotations

import pytest

from meshscope.cli import main

pytestmark = pytest.mark.e2e

# As upstream samples ship it: no metadata.namespace.
VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - route:
    - destination:
        host: ratings
        subset: v1
"""


def test_apply_n_places_the_object_and_without_n_it_is_default(bundled_mesh, mesh_config, tmp_path, capsys):
    f = tmp_path / "ratings-vs.yaml"
    f.write_text(VS)
    ctl = ["--control", f"http://127.0.0.1:{bundled_mesh.control.port}", "--data-dir", str(bundled_mesh.data_dir.parent)]
    # Without -n the object is default/ratings, whose short host names a Service default has not: refused.
    assert main(["apply", "-f", str(f), *ctl]) == 1
    out = capsys.readouterr().out
    assert "VirtualService default/ratings" in out and "MS1001" in out
    assert not any(o.name == "ratings" and o.kind == "VirtualService" for o in bundled_mesh.objects)
    # With -n bookinfo it is bookinfo/ratings, pushed to the sidecars, and the mesh keeps that namespace.
    assert main(["apply", "-f", str(f), "-n", "bookinfo", *ctl]) == 0
    assert "VirtualService bookinfo/ratings applied" in capsys.readouterr().out
    assert [o.ref for o in bundled_mesh.objects if o.kind == "VirtualService" and o.name == "ratings"] == [
        "VirtualService bookinfo/ratings"]


def test_control_api_stores_an_unnamespaced_object_in_default(bundled_mesh, mesh_config):
    """What the live diagnoser reads back from the mesh: the namespace kubectl would have given it."""
    from mesh.control_api import ControlClient
    client = ControlClient(f"http://127.0.0.1:{bundled_mesh.control.port}", token=bundled_mesh.control_token)
    body = VS.replace("name: ratings\n", "name: ratings-fqdn\n").replace("host: ratings\n",
                                                                        "host: ratings.bookinfo.svc.cluster.local\n")
    r = client.apply(body, "no-namespace.yaml")
    assert r["changed"] == ["VirtualService default/ratings-fqdn"]
    assert [o.namespace for o in bundled_mesh.objects if o.name == "ratings-fqdn"] == ["default"]
    assert "namespace: default" in client.config_yaml()
