"""Files-only analysis assumes the install's ingress gateway, as istioctl does; files that define it win."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mesh.config import MeshConfig, load_text
from mesh.config.defaults import assumed_ingress

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "tests" / "corpus" / "realworld" / "files" / "istio" / "samples"
BOOKINFO = [SAMPLES / "bookinfo" / "platform" / "kube" / "bookinfo.yaml",
            SAMPLES / "bookinfo" / "networking" / "bookinfo-gateway.yaml"]


def _json(*args: str) -> list[dict]:
    r = subprocess.run([sys.executable, "-m", "meshscope", "analyze", "--format", "json", *args],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    return json.loads(r.stdout)


def test_upstream_bookinfo_with_its_gateway_is_clean(tmp_path):
    """Istio's own sample, as shipped: the Gateway selects the install's ingress pods, port 8080 is the
    Service's targetPort, and nothing about the stand-ins is reported."""
    assert [f for f in _json(*map(str, BOOKINFO)) if f["severity"] != "info"] == []


def test_ingress_controller_off_assumes_nothing(tmp_path):
    mc = tmp_path / "mesh.yaml"
    mc.write_text("ingressControllerMode: 'OFF'\n")
    found = [(f["code"], f["resource"]["name"]) for f in _json("--mesh-config", str(mc), *map(str, BOOKINFO))]
    assert ("MS1201", "bookinfo-gateway") in found
    assert assumed_ingress(MeshConfig(ingress_controller_mode="OFF"), []) == []


def test_stand_ins_give_way_to_what_the_files_define():
    mine = load_text("""\
apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  ports: [{name: http2, port: 80, targetPort: 9090}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: gw, namespace: istio-system}
spec:
  template:
    metadata: {labels: {istio: ingressgateway}}
    spec: {containers: [{name: istio-proxy, image: proxyv2}]}
""").objects
    assert assumed_ingress(MeshConfig(), mine) == []
    assert [o.kind for o in assumed_ingress(MeshConfig(), mine[:1])] == ["Pod"]
    assert [o.kind for o in assumed_ingress(MeshConfig(), mine[1:])] == ["Service"]
    custom = assumed_ingress(MeshConfig(root_namespace="mesh-root", ingress_service="edge", ingress_selector="edge"), [])
    assert {(o.kind, o.namespace, o.name) for o in custom} == {("Pod", "mesh-root", "edge-stand-in"),
                                                               ("Service", "mesh-root", "edge")}
    assert all(o.labels.get("istio") == "edge" for o in custom if o.kind == "Pod")


def test_istiod_is_assumed_in_every_install_so_routes_to_it_resolve(tmp_path):
    """istio's multicluster sample exposes istiod through the east-west gateway (a VirtualService to
    istiod.istio-system.svc.cluster.local, applied -n istio-system): only the east-west gateway the instructions
    install first is missing, istiod is not (files alone reported two MS1001 errors for it). Ingress off or not."""
    expose = SAMPLES / "multicluster" / "expose-istiod.yaml"
    found = [(f["code"], f["resource"]["name"]) for f in _json("-n", "istio-system", str(expose))
             if f["severity"] != "info"]
    assert found == [("MS1201", "istiod-gateway")]
    mc = tmp_path / "mesh.yaml"
    mc.write_text("ingressControllerMode: 'OFF'\n")
    assert "MS1001" not in {f["code"] for f in _json("--mesh-config", str(mc), "-n", "istio-system", str(expose))}


def test_the_istiod_stand_ins_give_way_to_what_the_files_define():
    from mesh.config.defaults import assumed_control_plane, assumed_install
    mine = load_text("""\
apiVersion: v1
kind: Service
metadata: {name: istiod, namespace: istio-system}
spec:
  selector: {app: istiod}
  ports: [{name: grpc-xds, port: 15010}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: istiod, namespace: istio-system}
spec:
  template:
    metadata: {labels: {app: istiod, istio: pilot}}
    spec: {containers: [{name: discovery, image: pilot}]}
""").objects
    assert assumed_control_plane(MeshConfig(), mine) == []
    assert [o.kind for o in assumed_control_plane(MeshConfig(), mine[:1])] == ["Pod"]
    assert [o.kind for o in assumed_control_plane(MeshConfig(), mine[1:])] == ["Service"]
    custom = assumed_install(MeshConfig(root_namespace="mesh-root", ingress_controller_mode="OFF"), [])
    assert {(o.kind, o.namespace, o.name) for o in custom} == {("Pod", "mesh-root", "istiod-stand-in"),
                                                               ("Service", "mesh-root", "istiod")}
