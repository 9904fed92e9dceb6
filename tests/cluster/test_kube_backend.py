"""ClusterBackend's config side: the real `kubernetes` client against the replaying API server."""
from __future__ import annotations

import pytest

from mesh.kube import KubeError, api_client
from meshscope.cluster import ClusterBackend, ClusterOptions
from tests.util import free_port, wait_until

VS_PATH = "/apis/networking.istio.io/v1/virtualservices"


def vs(name: str, rv: str, host: str = "ratings") -> dict:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": "bookinfo", "resourceVersion": rv},
            "spec": {"hosts": [host], "http": [{"route": [{"destination": {"host": host, "subset": "v1"}}]}]}}


@pytest.fixture
def started(bookinfo_cluster):
    """A started backend over the Bookinfo cluster (Prometheus deliberately absent), and its notes."""
    server, kubeconfig = bookinfo_cluster
    notes: list[str] = []
    be = ClusterBackend(ClusterOptions(prometheus_url=f"http://127.0.0.1:{free_port()}", kubeconfig=str(kubeconfig),
                                       debounce_s=0.5, prometheus_timeout=2),
                        notify=notes.append)
    progress: list[str] = []
    be.start(progress=progress.append)
    yield server, be, notes, progress
    be.stop()


def test_start_lists_the_cluster_into_a_snapshot(started):
    server, be, notes, progress = started
    snap = be.snapshot()
    assert {o.name for o in snap.services()} == {"productpage", "details", "reviews", "ratings", "istio-ingressgateway"}
    workloads = {w.name for w in snap.workloads()}
    assert {"productpage-v1", "reviews-v2", "ratings-v1"} <= {w.split("-x")[0].rsplit("-", 1)[0] for w in workloads} | workloads
    assert {o.name for o in snap.of_kind("DestinationRule")} == {"productpage", "reviews", "ratings", "details"}
    st = be.status()
    assert st["kubernetes"]["state"] == "ok" and st["kubernetes"]["objects"] == len(be.objects()) > 20
    # Prometheus being down does not stop the start; it is a status and one progress line
    assert st["prometheus"]["state"] == "error" and "cannot reach Prometheus" in st["prometheus"]["error"]
    assert any(line.startswith("prometheus          NOT AVAILABLE") for line in progress)
    assert any("objects of 15 kinds" in line for line in progress)


def test_watch_events_reach_the_snapshot_in_one_debounced_rebuild(started):
    server, be, notes, _ = started
    rebuilds = be.status()["kubernetes"]["rebuilds"]
    server.script_watch(VS_PATH, [{"type": "ADDED", "object": vs(f"burst-{i}", str(3000 + i))} for i in range(5)])
    wait_until(lambda: len(be.snapshot().of_kind("VirtualService")) == 6, timeout=15, what="watched VirtualServices")
    assert be.status()["kubernetes"]["rebuilds"] == rebuilds + 1  # five events, one rebuild
    server.script_watch(VS_PATH, [{"type": "DELETED", "object": vs("burst-0", "3010")}])
    wait_until(lambda: len(be.snapshot().of_kind("VirtualService")) == 5, timeout=15, what="deletion applied")


def test_410_gone_relists_and_the_snapshot_follows_the_new_list(started):
    server, be, _, _ = started
    server.lists[VS_PATH] = {**server.lists[VS_PATH], "metadata": {"resourceVersion": "5000"},
                             "items": server.lists[VS_PATH]["items"] + [vs("from-relist", "4999")]}
    gone = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired",
            "message": "too old resource version"}
    server.script_watch(VS_PATH, [{"type": "ERROR", "object": gone}])
    wait_until(lambda: be.snapshot().find("VirtualService", "bookinfo", "from-relist"), timeout=15,
               what="relisted object in the snapshot")
    assert be.source.status()["VirtualService"]["relists"] >= 2
    wait_until(lambda: any("resourceVersion=5000" in r for r in server.requests if r.startswith(VS_PATH)),
               timeout=10, what="watch resumed from the relist's version")


def test_lost_api_server_is_reported_once_and_the_last_snapshot_stays(started):
    server, be, notes, _ = started
    before = be.snapshot()
    rebuilds = be.status()["kubernetes"]["rebuilds"]
    server.stop()
    # a watch held open on the stopped server ends by its request timeout (30 s) at the latest
    wait_until(lambda: be.status()["kubernetes"]["state"] == "degraded", timeout=45, what="degraded status")
    assert "watch" in be.status()["kubernetes"]["error"] or "GET" in be.status()["kubernetes"]["error"]
    assert sum(n.startswith("kubernetes degraded") for n in notes) >= 1
    # nothing ingested is lost: the last good snapshot keeps serving
    assert be.snapshot() is before and be.status()["kubernetes"]["rebuilds"] == rebuilds
    assert len(before.services()) == 5


def test_unreachable_cluster_at_start_is_a_clear_error(tmp_path, kube_api):
    path = kube_api.kubeconfig(tmp_path)
    kube_api.stop()
    be = ClusterBackend(ClusterOptions(prometheus_url="http://127.0.0.1:1"), api_client=api_client(str(path)))
    with pytest.raises(KubeError, match="GET /api/v1/namespaces"):
        be.start()
    be.stop()


def test_namespace_selection_limits_the_snapshot(bookinfo_cluster):
    server, kubeconfig = bookinfo_cluster
    be = ClusterBackend(ClusterOptions(prometheus_url=f"http://127.0.0.1:{free_port()}", kubeconfig=str(kubeconfig),
                                       namespaces=["istio-system"], prometheus_timeout=1))
    be.start()
    try:
        assert {o.namespace for o in be.objects() if o.namespace} == {"istio-system"}
    finally:
        be.stop()


def test_a_stopped_replaying_server_answers_nothing_even_on_a_kept_alive_connection(kube_api):
    """The lost-server test relies on this: a dead API server cuts the connections the client pooled."""
    import http.client

    kube_api.lists["/api/v1/namespaces"] = {"kind": "NamespaceList", "items": []}
    conn = http.client.HTTPConnection("127.0.0.1", int(kube_api.url.rsplit(":", 1)[1]), timeout=5)
    headers = {"Authorization": f"Bearer {kube_api.token}"}
    conn.request("GET", "/api/v1/namespaces", headers=headers)
    assert conn.getresponse().read()
    kube_api.stop()
    with pytest.raises((http.client.HTTPException, OSError)):
        conn.request("GET", "/api/v1/namespaces", headers=headers)
        conn.getresponse()
    conn.close()
