"""KubeSource against a local API server replaying recorded Kubernetes responses, through the real client."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

import mesh.kube.source as source_mod
from mesh.kube import KubeError, KubeSource, api_client, sidecar_status
from tests.util import wait_until

DATA = Path(__file__).parent / "data"
VS_PATH = "/apis/networking.istio.io/v1/virtualservices"


@pytest.fixture
def cluster(kube_api, tmp_path):
    kube_api.load_dir(DATA)
    return kube_api, api_client(str(kube_api.kubeconfig(tmp_path)))


def by_kind(objs):
    out: dict[str, list] = {}
    for o in objs:
        out.setdefault(o.kind, []).append(o)
    return out


def test_list_all_reads_every_served_kind(cluster):
    server, api = cluster
    src = KubeSource(api, origin="k8s:test")
    kinds = by_kind(src.list_all())
    assert {o.name for o in kinds["Service"]} == {"productpage", "reviews", "ratings", "details"}
    assert len(kinds["Pod"]) == 5
    vs = kinds["VirtualService"][0]
    assert (vs.namespace, vs.name, vs.api_version) == ("bookinfo", "reviews", "networking.istio.io/v1")
    assert vs.spec["http"][0]["route"][1]["weight"] == 10
    assert str(vs.source).startswith("k8s:test/VirtualService/bookinfo/reviews")
    # security.istio.io is only served at v1beta1 in this recording: the source falls back to it
    pa = kinds["PeerAuthentication"][0]
    assert pa.api_version == "security.istio.io/v1beta1" and pa.spec["mtls"]["mode"] == "STRICT"
    st = src.status()
    assert st["PeerAuthentication"]["version"] == "v1beta1"
    assert st["RequestAuthentication"]["version"] is None
    assert "not served" in st["RequestAuthentication"]["last_error"]
    assert "Namespace" in kinds and all(o.namespace is None for o in kinds["Namespace"])


def test_namespace_filter_keeps_root_namespace(cluster):
    _, api = cluster
    objs = KubeSource(api, namespaces=["bookinfo"]).list_all()
    namespaces = {o.namespace for o in objs if o.kind != "Namespace"}
    assert namespaces == {"bookinfo", "istio-system"}
    assert {o.name for o in objs if o.kind == "Namespace"} == {"bookinfo", "istio-system"}


def test_lists_are_paged(cluster, monkeypatch):
    server, api = cluster
    monkeypatch.setattr(source_mod, "PAGE_SIZE", 2)
    pods = [o for o in KubeSource(api).list_all() if o.kind == "Pod"]
    assert len(pods) == 5
    pod_requests = [r for r in server.requests if r.startswith("/api/v1/pods")]
    assert len(pod_requests) == 3 and "continue=2" in pod_requests[1] and "continue=4" in pod_requests[2]


def test_watch_applies_events_bookmarks_and_relists_on_410(cluster):
    server, api = cluster
    added = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
             "metadata": {"name": "ratings", "namespace": "bookinfo", "resourceVersion": "2400"},
             "spec": {"hosts": ["ratings"], "http": [{"route": [{"destination": {"host": "ratings"}}]}]}}
    modified = copy.deepcopy(server.lists[VS_PATH]["items"][0])
    modified["metadata"]["resourceVersion"] = "2401"
    modified["spec"]["http"][0]["route"][0]["weight"] = 50
    modified["spec"]["http"][0]["route"][1]["weight"] = 50
    bookmark = {"kind": "VirtualService", "apiVersion": "networking.istio.io/v1", "metadata": {"resourceVersion": "2500"}}
    gone = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired",
            "message": "too old resource version: 2500 (2600)"}
    server.script_watch(VS_PATH, [{"type": "ADDED", "object": added}, {"type": "MODIFIED", "object": modified},
                                  {"type": "BOOKMARK", "object": bookmark}, {"type": "ERROR", "object": gone}])
    changes = []
    src = KubeSource(api, on_change=lambda kind, ev, obj: changes.append((kind, ev)), backoff_initial=0.05)
    src.start()
    try:
        # after the 410 the source relists; the server's list (what a relist sees) is still the recording
        wait_until(lambda: src.status()["VirtualService"]["relists"] >= 2, timeout=30, what="relist after 410")
        assert ("VirtualService", "ADDED") in changes and ("VirtualService", "MODIFIED") in changes
        assert src.status()["VirtualService"]["bookmarks"] == 1
        # the relist replaced the watched state with the server's list
        vss = {o.name: o for o in src.objects() if o.kind == "VirtualService"}
        assert set(vss) == {"reviews"} and vss["reviews"].spec["http"][0]["route"][0]["weight"] == 90
        # the watch after the bookmark resumed from it; after the relist, from the list's version
        watches = [r for r in server.requests if r.startswith(VS_PATH) and "watch=true" in r]
        assert "resourceVersion=2301" in watches[0]
        wait_until(lambda: len([r for r in server.requests if r.startswith(VS_PATH) and "watch=true" in r]) >= 2, timeout=30)
        server.script_watch(VS_PATH, [{"type": "DELETED", "object": modified}])
        wait_until(lambda: not [o for o in src.objects() if o.kind == "VirtualService"], timeout=30, what="delete applied")
    finally:
        src.stop()


def test_wrong_token_is_a_clear_error(kube_api, tmp_path):
    kube_api.load_dir(DATA)
    cfg = json.loads(kube_api.kubeconfig(tmp_path).read_text())
    cfg["users"][0]["user"]["token"] = "wrong"
    bad = tmp_path / "bad-kubeconfig"
    bad.write_text(json.dumps(cfg))
    with pytest.raises(KubeError, match="401"):
        KubeSource(api_client(str(bad))).list_all()


def test_unreachable_cluster_is_a_clear_error(tmp_path, kube_api):
    path = kube_api.kubeconfig(tmp_path)
    kube_api.stop()
    with pytest.raises(KubeError, match="GET /api/v1/namespaces"):
        KubeSource(api_client(str(path)), request_timeout=2).list_all()


def test_missing_kubeconfig_is_a_clear_error(tmp_path):
    with pytest.raises(KubeError, match="cannot load Kubernetes configuration"):
        api_client(str(tmp_path / "nope"))


def test_sidecar_injection_status():
    pods = {p["metadata"]["name"]: p for p in json.loads((DATA / "pods.json").read_text())["items"]}
    injected = sidecar_status(pods["productpage-v1-7d8f9c6b5-x2x7q"])
    assert injected["injected"] and injected["annotation"] and injected["revision"] == "default"
    plain = sidecar_status(pods["ratings-v1-6c7b8d9e4-qwert"])
    assert not plain["injected"] and not plain["annotation"]


def test_managed_fields_are_not_kept():
    from mesh.kube import to_config_object

    item = {"metadata": {"name": "r", "namespace": "b", "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"hosts": ["r"]}}
    obj = to_config_object(item, "networking.istio.io/v1", "VirtualService", "k8s")
    assert "managedFields" not in obj.raw["metadata"] and obj.raw["metadata"]["name"] == "r"
    assert "managedFields" in item["metadata"], "the API response itself is left untouched"
