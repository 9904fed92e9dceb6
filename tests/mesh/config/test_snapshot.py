"""Snapshot indexes, host resolution, exportTo and workloads."""
from pathlib import Path

import pytest

from mesh.config import MeshConfig, MeshConfigError, Snapshot, load_mesh_config, load_text
from mesh.config.hosts import export_scopes_overlap, host_covers, hosts_intersect

OBJECTS = """\
apiVersion: v1
kind: Namespace
metadata: {name: bookinfo, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: bookinfo}
spec: {selector: {app: reviews}, ports: [{port: 9080, name: http}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1, namespace: bookinfo}
spec:
  template:
    metadata: {labels: {app: reviews, version: v1}}
    spec: {serviceAccountName: bookinfo-reviews, containers: [{name: app, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: ratings-1, namespace: other, labels: {app: ratings}}
spec: {containers: [{name: istio-proxy, image: proxyv2}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: other}
spec: {hosts: ["*.example.com"], exportTo: ["."]}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: bookinfo}
spec: {selector: {istio: ingressgateway}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: bookinfo}
spec: {gatewayClassName: istio}
"""


@pytest.fixture()
def snap() -> Snapshot:
    return Snapshot(load_text(OBJECTS, "o.yaml").objects)


def test_kinds_and_find(snap: Snapshot):
    assert [o.api_version for o in snap.of_kind("Gateway")] == ["networking.istio.io/v1"]
    assert [o.api_version for o in snap.of_kind("KubernetesGateway")] == ["gateway.networking.k8s.io/v1"]
    assert snap.find("Service", "bookinfo", "reviews").name == "reviews"
    assert snap.find("Service", "other", "reviews") is None
    assert snap.namespaces() == {"bookinfo", "other"}


def test_hosts_resolve_in_object_namespace(snap: Snapshot):
    assert snap.fqdn("reviews", "bookinfo") == "reviews.bookinfo.svc.cluster.local"
    assert snap.fqdn("reviews.bookinfo", "x") == "reviews.bookinfo"  # Istio: a dotted name is taken as written
    assert snap.host_known("reviews", "bookinfo")
    assert not snap.host_known("reviews", "other")
    assert snap.host_known("reviews.bookinfo.svc.cluster.local", "other")


def test_export_to_limits_service_entries(snap: Snapshot):
    assert snap.host_known("api.example.com", "other")
    assert not snap.host_known("api.example.com", "bookinfo")


def test_workloads_from_pods_and_templates(snap: Snapshot):
    ws = {(w.kind, w.name): w for w in snap.workloads()}
    dep = ws[("Deployment", "reviews-v1")]
    assert dep.labels == {"app": "reviews", "version": "v1"} and dep.service_account == "bookinfo-reviews"
    assert snap.in_mesh(dep)  # namespace label
    pod = ws[("Pod", "ratings-1")]
    assert pod.service_account == "default" and pod.has_proxy and snap.in_mesh(pod)
    assert [w.name for w in snap.matching_workloads("bookinfo", {"version": "v1"})] == ["reviews-v1"]
    assert snap.pods(any_namespace=True, selector={"app": "ratings"})[0].name == "ratings-1"


def test_host_wildcards():
    assert host_covers("*", "a.b") and host_covers("*.b.com", "a.b.com") and host_covers("*.b.com", "*.x.b.com")
    assert not host_covers("*.b.com", "b.com") and not host_covers("a.b.com", "*.b.com")
    assert hosts_intersect("a.b.com", "*.b.com") and not hosts_intersect("a.c.com", "*.b.com")


def test_export_scopes_overlap():
    objs = load_text("""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: a, namespace: x}
spec: {exportTo: ["."]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: b, namespace: y}
spec: {exportTo: ["."]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: c, namespace: y}
spec: {}
""", "e.yaml").objects
    a, b, c = objs
    assert not export_scopes_overlap(a, b)
    assert export_scopes_overlap(a, c) and export_scopes_overlap(b, c) and export_scopes_overlap(c, c)


def test_mesh_config_defaults_and_file(tmp_path: Path):
    assert MeshConfig().root_namespace == "istio-system" and MeshConfig().enable_auto_mtls
    f = tmp_path / "mesh.yaml"
    f.write_text("rootNamespace: mesh-root\nenableAutoMtls: false\noutboundTrafficPolicy: {mode: REGISTRY_ONLY}\n"
                 "defaultConfig:\n  proxyMetadata: {ISTIO_META_DNS_CAPTURE: 'true', ISTIO_META_DNS_AUTO_ALLOCATE: 'true'}\n")
    mc = load_mesh_config(f)
    assert (mc.root_namespace, mc.enable_auto_mtls, mc.outbound_traffic_policy) == ("mesh-root", False, "REGISTRY_ONLY")
    assert mc.dns_capture and mc.dns_auto_allocate and mc.trust_domain == "cluster.local"


def test_mesh_config_configmap_form(tmp_path: Path):
    f = tmp_path / "cm.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio}\ndata:\n  mesh: |\n    trustDomain: example.org\n")
    assert load_mesh_config(f).trust_domain == "example.org"


@pytest.mark.parametrize("text, needle", [
    ("enableAutoMtls: maybe\n", "enableAutoMtls"),
    ("outboundTrafficPolicy: {mode: SOMETIMES}\n", "outboundTrafficPolicy.mode"),
    ("rootNamespace: [a\n", "not valid YAML"),
])
def test_bad_mesh_config_names_the_problem(tmp_path: Path, text: str, needle: str):
    f = tmp_path / "m.yaml"
    f.write_text(text)
    with pytest.raises(MeshConfigError, match=needle) as exc:
        load_mesh_config(f)
    assert str(f) in str(exc.value)


def test_tracking_view_records_kinds_read_and_shares_indexes(snap: Snapshot):
    view = snap.tracking_view()
    assert view.reads == set()
    view.host_known("nothere", "bookinfo")
    view.matching_workloads("bookinfo", {"app": "reviews"})
    _ = view.mesh_config.root_namespace
    assert view.reads == {"Service", "ServiceEntry", "Workload", "MeshConfig"}
    assert snap.reads == set()  # the snapshot itself does not track
    assert view.workloads() is snap.workloads()


def test_service_export_annotation_limits_visibility():
    objs = load_text("""\
apiVersion: v1
kind: Service
metadata:
  name: hello
  namespace: hello
  annotations: {networking.istio.io/exportTo: "hello1, ."}
""", "s.yaml").objects
    snap = Snapshot(objs)
    assert snap.host_known("hello.hello.svc.cluster.local", "hello1") and snap.host_known("hello", "hello")
    assert not snap.host_known("hello.hello.svc.cluster.local", "other")
