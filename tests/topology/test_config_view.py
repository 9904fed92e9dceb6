"""What config says about a node: mTLS mode precedence, VS/DR badges for a host."""
from mesh.config import Snapshot, load_text
from topology import config_view

CONFIG = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: legacy}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: db, namespace: legacy}
spec: {selector: {matchLabels: {app: db}}, mtls: {mode: DISABLE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: unset, namespace: legacy}
spec: {selector: {matchLabels: {app: cache}}, mtls: {mode: UNSET}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  gateways: [mesh]
  http:
  - timeout: 2s
    route: [{destination: {host: reviews, subset: v1}, weight: 90}, {destination: {host: reviews, subset: v2}, weight: 10}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge-only, namespace: bookinfo}
spec: {hosts: [reviews], gateways: [bookinfo-gateway], http: [{fault: {abort: {httpStatus: 500}}, route: [{destination: {host: reviews}}]}]}
"""


def snap():
    result = load_text(CONFIG, "cfg.yaml")
    assert not result.problems
    return Snapshot(result.objects)


def test_mtls_mode_precedence_workload_namespace_mesh():
    s = snap()
    assert config_view.mtls_mode(s, "bookinfo", {"app": "x"}) == "STRICT"  # mesh-wide
    assert config_view.mtls_mode(s, "legacy", {"app": "x"}) == "PERMISSIVE"  # namespace beats mesh
    assert config_view.mtls_mode(s, "legacy", {"app": "db"}) == "DISABLE"  # workload selector beats namespace
    assert config_view.mtls_mode(s, "legacy", {"app": "cache"}) == "PERMISSIVE"  # UNSET inherits


def test_badges_only_from_mesh_bound_virtual_services():
    s = snap()
    vss = config_view.virtual_services(s, "reviews.bookinfo.svc.cluster.local")
    assert [v.name for v in vss] == ["reviews"]
    assert config_view.vs_badges(vss[0]) == {"VS", "TIMEOUT", "SHIFT"}
    assert config_view.virtual_services(s, "ratings.bookinfo.svc.cluster.local") == []
