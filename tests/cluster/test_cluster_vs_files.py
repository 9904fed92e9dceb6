"""The same config read from a cluster is judged as it is from files: every real-world set of
tests/corpus/realworld (upstream manifests nobody here wrote) is served by the replaying Kubernetes API as a
cluster that applied it would serve it (each Deployment, Rollout, StatefulSet and DaemonSet with its pods,
injected as Istio's injector does unless the template opts out), read back through `meshscope analyze
--kubeconfig`'s loader, and must give the errors and warnings the files give. Differences found this way:
kinds the rules read but the cluster source never listed (EnvoyFilter, Gateway API, Telemetry, ...), and the
injected istio-proxy's declared port 15090 taken for the app's own (MS1507 on every live Service whose app
declares no port). Definitions repeated among files (MS0011) cannot exist in a cluster and are left out."""
from __future__ import annotations

import logging
from collections import Counter

import pytest

from diagnose import analyze
from mesh.config import Snapshot, load_paths
from mesh.config.namespaces import DEFAULT_NAMESPACE
from meshscope.cluster_analyze import load_cluster_objects
from tests.cluster.kubedata import list_bodies
from tests.corpus.test_realworld import INSTALL, ROOT, SETS
from tests.fixtures.kubeapi import KubeAPIServer


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    server = KubeAPIServer().start()
    yield server, str(server.kubeconfig(tmp_path_factory.mktemp("kube")))
    server.stop()


def serious(findings) -> Counter:
    return Counter(f"{f.code} {f.resource.label() if f.resource else ''}" for f in findings
                   if f.severity in ("error", "warning") and f.code != "MS0011")


@pytest.mark.parametrize("name", list(SETS))
def test_a_set_read_from_a_cluster_is_judged_as_from_its_files(cluster, name, caplog):
    """Every other set is injected in the native-sidecar mode (istio-proxy an init container that keeps running,
    Istio's default since 1.27), the rest classically: both injector modes over the corpus at the cost of one."""
    server, kubeconfig = cluster
    entry = SETS[name]
    loaded = load_paths([ROOT / "files" / f for f in entry["files"]] + [INSTALL],
                        default_namespace=entry.get("namespace", DEFAULT_NAMESPACE))
    server.lists.clear()
    server.lists.update(list_bodies([o.raw for o in loaded.objects], native=list(SETS).index(name) % 2 == 1))
    with caplog.at_level(logging.ERROR):
        objects = load_cluster_objects(kubeconfig)
    from_files, from_cluster = serious(analyze(Snapshot(loaded.objects))), serious(analyze(Snapshot(objects)))
    assert from_files == from_cluster, (f"only from files: {sorted((from_files - from_cluster).elements())}; "
                                        f"only from the cluster: {sorted((from_cluster - from_files).elements())}")


GATEWAYS = [
    {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "edge", "namespace": "web"},
     "spec": {"selector": {"istio": "ingressgateway"},
              "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}},
    {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "edge", "namespace": "web"},
     "spec": {"gatewayClassName": "istio", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}},
    {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "web"},
     "spec": {"parentRefs": [{"name": "edge"}], "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}},
]


def test_kinds_of_one_name_in_two_groups_and_a_role_that_may_not_read_an_add_on_kind(cluster):
    """An Istio Gateway and a Gateway API Gateway of one name are two objects; a 403 on an add-on kind (here the
    Gateway API's HTTPRoutes) leaves that kind out with its reason instead of failing the whole read."""
    from mesh.kube import KubeSource, api_client
    from mesh.kube.kinds import BY_KIND

    server, kubeconfig = cluster
    server.lists.clear()
    server.lists.update(list_bodies(GATEWAYS))
    route_path = BY_KIND["HTTPRoute"].path("v1")
    server.failures.append((lambda path: path.split("?")[0] == route_path, 403,
                            {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden",
                             "code": 403, "message": "httproutes.gateway.networking.k8s.io is forbidden"}))
    source = KubeSource(api_client(kubeconfig))
    objects = source.list_all()
    assert sorted((o.api_version, o.kind, o.name) for o in objects if o.name == "edge") == [
        ("gateway.networking.k8s.io/v1", "Gateway", "edge"), ("networking.istio.io/v1", "Gateway", "edge")]
    status = source.status()
    assert status["KubernetesGateway"]["objects"] == 1 and status["Gateway"]["objects"] == 1
    assert status["HTTPRoute"]["version"] is None and "not readable" in status["HTTPRoute"]["last_error"]
    assert status["HTTPRoute"]["forbidden"] and not status["KubernetesGateway"]["forbidden"]
    assert not [o for o in objects if o.kind == "HTTPRoute"] and not server.failures


def test_analyze_says_which_kinds_the_credentials_could_not_read(cluster, capsys):
    from meshscope.commands.analyze import _cluster_objects

    server, kubeconfig = cluster
    server.lists.clear()
    server.lists.update(list_bodies(GATEWAYS))
    server.failures.append((lambda path: "/httproutes" in path, 403,
                            {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden",
                             "code": 403, "message": "forbidden"}))
    objects = _cluster_objects(kubeconfig, None, [], "istio-system")
    assert {o.name for o in objects} == {"edge"}
    err = capsys.readouterr().err
    assert "not readable with these credentials, so not analyzed: HTTPRoute (" in err


def test_serve_says_which_kinds_the_credentials_could_not_read(cluster):
    from meshscope.cluster import ClusterBackend, ClusterOptions
    from tests.util import free_port

    server, kubeconfig = cluster
    server.lists.clear()
    server.lists.update(list_bodies(GATEWAYS))
    server.failures.append((lambda path: "/httproutes" in path, 403,
                            {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden",
                             "code": 403, "message": "forbidden"}))
    said: list[str] = []
    be = ClusterBackend(ClusterOptions(prometheus_url=f"http://127.0.0.1:{free_port()}", prometheus_timeout=1,
                                       kubeconfig=kubeconfig, debounce_s=0.2))
    be.start(progress=said.append)
    try:
        assert any(line.strip() == "not readable with these credentials: HTTPRoute" for line in said), said
        assert not any("not served by this cluster" in line and "GRPCRoute" in line for line in said)
        assert be.status()["kubernetes"]["state"] == "ok"
    finally:
        be.stop()


def test_a_namespace_selection_keeps_cluster_scoped_kinds(cluster):
    """`-n web` keeps the cluster-scoped GatewayClass its Gateways name (it belongs to no namespace)."""
    from mesh.kube import KubeSource, api_client

    server, kubeconfig = cluster
    server.lists.clear()
    cls = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "istio"},
           "spec": {"controllerName": "istio.io/gateway-controller"}}
    other = {**GATEWAYS[0], "metadata": {"name": "elsewhere", "namespace": "other"}}
    server.lists.update(list_bodies([*GATEWAYS, cls, other]))
    kept = {(o.kind, o.name) for o in KubeSource(api_client(kubeconfig), namespaces=["web"]).list_all()}
    assert ("GatewayClass", "istio") in kept and ("Gateway", "edge") in kept and ("Gateway", "elsewhere") not in kept


def test_a_native_sidecar_is_a_sidecar(cluster):
    """A pod whose istio-proxy is a native sidecar (an init container with restartPolicy Always) is in the mesh
    as one with a classic istio-proxy container is, also where nothing else says so (injected through a pod-level
    revision label, its namespace unlabelled): it was read as a pod without a sidecar."""
    from mesh.config import Snapshot
    from mesh.kube import KubeSource, api_client

    server, kubeconfig = cluster
    app = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}},
           {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "apps"},
            "spec": {"selector": {"matchLabels": {"app": "api"}},
                     "template": {"metadata": {"labels": {"app": "api", "istio.io/rev": "canary"}},
                                  "spec": {"containers": [{"name": "api", "image": "api:1"}]}}}}]
    for native in (False, True):
        server.lists.clear()
        server.lists.update(list_bodies(app, native=native))
        snap = Snapshot(KubeSource(api_client(kubeconfig)).list_all())
        (pod,) = [w for w in snap.workloads() if w.kind == "Pod"]
        assert pod.has_proxy and snap.in_mesh(pod), f"native={native}"
        assert [c["name"] for c in pod.containers] == ["api", "istio-proxy"]
