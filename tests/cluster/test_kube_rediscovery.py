"""Kinds served after meshscope started are watched without a restart; kinds whose CRD goes away are dropped.

Before, the Kubernetes source listed every kind once at start and watched only those served then: Istio (or the
Gateway API CRDs) installed afterwards was never read until a restart, and a deleted CRD left its objects in the
snapshot with the watch failing every backoff. Against the replaying API server (real `kubernetes` client, real
HTTP), a kind is served mid-test, with and without the discovery endpoint (`GET /apis`).
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from mesh.kube import KubeSource, api_client
from mesh.kube.kinds import BY_KIND
from tests.util import wait_until

DATA = Path(__file__).resolve().parents[1] / "mesh" / "kube" / "data"
VS = BY_KIND["VirtualService"]
VS_PATH = VS.path("v1")
CORE = ("namespaces", "services", "pods", "serviceaccounts", "deployments", "replicasets", "statefulsets")
INTERVAL = 0.2


def _load(name: str) -> tuple[str, dict]:
    body = json.loads((DATA / f"{name}.json").read_text())
    return body.pop("x-path"), body


def _serve_discovery(kube_api, form: str, *resources: str) -> None:
    """Discovery as the server answers it: `resources` are "group/version/plural". "aggregated": one
    APIGroupDiscoveryList at /apis (Kubernetes 1.26+); "legacy": an APIGroupList there and an APIResourceList per
    group/version; "none": no discovery endpoint (404)."""
    for path in [p for p in kube_api.lists if p == "/apis" or p.count("/") == 3 and p.startswith("/apis/")]:
        del kube_api.lists[path]
    by_gv: dict[str, list[str]] = {}
    for r in resources:
        gv, plural = r.rsplit("/", 1)
        by_gv.setdefault(gv, []).append(plural)
    groups: dict[str, list[str]] = {}
    for gv in by_gv:
        groups.setdefault(gv.split("/")[0], []).append(gv)
    if form == "aggregated":
        kube_api.lists["/apis"] = {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "items": [
            {"metadata": {"name": g}, "versions": [
                {"version": gv.split("/")[1], "resources": [{"resource": p, "responseKind": {}, "scope": "Namespaced",
                                                             "verbs": ["get", "list", "watch"]} for p in by_gv[gv]]}
                for gv in gvs]} for g, gvs in groups.items()]}
    elif form == "legacy":
        kube_api.lists["/apis"] = {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": gv, "version": gv.split("/")[1]} for gv in gvs]}
            for g, gvs in groups.items()]}
        for gv, plurals in by_gv.items():
            kube_api.lists[f"/apis/{gv}"] = {"kind": "APIResourceList", "groupVersion": gv, "resources": [
                r for p in plurals for r in ({"name": p, "namespaced": True, "kind": "X", "verbs": ["list", "watch"]},
                                             {"name": f"{p}/status", "namespaced": True, "kind": "X", "verbs": []})]}


APPS = ("apps/v1/deployments", "apps/v1/replicasets", "apps/v1/statefulsets")
ISTIO_VS = "networking.istio.io/v1/virtualservices"
ISTIO_DR = "networking.istio.io/v1/destinationrules"


@pytest.fixture
def cluster(kube_api, tmp_path):
    for name in CORE:
        path, body = _load(name)
        kube_api.lists[path] = body
    # a real API server always serves the core kinds; a cluster without Nodes answers an empty list, not a 404
    kube_api.lists["/api/v1/nodes"] = {"kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
                                       "items": []}
    changes: list[tuple[str, str]] = []
    src = KubeSource(api_client(str(kube_api.kubeconfig(tmp_path))), discovery_interval=INTERVAL,
                     backoff_initial=0.05, backoff_max=0.2, on_change=lambda kind, ev, obj: changes.append((kind, ev)))
    yield kube_api, src, changes
    src.stop()


def _vs_names(src: KubeSource) -> set[str]:
    return {o.name for o in src.objects() if o.kind == "VirtualService"}


def _watches(kube_api, path: str) -> int:
    return sum(1 for r in list(kube_api.requests) if r.startswith(path + "?") and "watch=true" in r)


FORMS = ["aggregated", "legacy", "none"]


@pytest.mark.parametrize("form", FORMS)
def test_a_kind_served_after_start_is_listed_and_watched(cluster, form):
    kube_api, src, changes = cluster
    _serve_discovery(kube_api, form, *APPS)
    src.start()
    assert src.status()["VirtualService"]["version"] is None and not _vs_names(src)

    path, body = _load("virtualservices")  # Istio installed now: its CRDs and one VirtualService
    assert path == VS_PATH
    added = copy.deepcopy(body["items"][0])
    added["metadata"].update(name="ratings-canary", resourceVersion="2302", uid="uid-canary")
    kube_api.script_watch(VS_PATH, [{"type": "ADDED", "object": added}])
    kube_api.lists[VS_PATH] = body
    _serve_discovery(kube_api, form, *APPS, ISTIO_VS, "networking.istio.io/v1beta1/virtualservices")

    # listed, then watched: the watch's ADDED event arrives, so the watch thread runs
    wait_until(lambda: _vs_names(src) == {"reviews", "ratings-canary"}, timeout=30,
               what="the VirtualService list and its watch's event")
    assert src.status()["VirtualService"]["version"] == "v1"
    assert ("VirtualService", "RELIST") in changes and ("VirtualService", "ADDED") in changes
    assert _watches(kube_api, VS_PATH) >= 1
    assert "kube-watch-VirtualService" in {t.name for t in src._threads if t.is_alive()}
    # kinds still not served stay so, and nothing is watched twice
    assert src.status()["DestinationRule"]["version"] is None
    assert sum(t.name == "kube-watch-VirtualService" and t.is_alive() for t in src._threads) == 1


def test_discovery_with_nothing_new_lists_nothing(cluster):
    """With aggregated discovery a look is one request: while nothing changes, no kind is listed again (and a
    group/version served without a kind meshscope reads costs no list either)."""
    kube_api, src, _ = cluster
    _serve_discovery(kube_api, "aggregated", *APPS, "networking.istio.io/v1/workloadgroups-not-ours")
    src.start()
    before = len(kube_api.requests)
    wait_until(lambda: sum(r == "/apis" for r in kube_api.requests[before:]) >= 3, timeout=30,
               what="three discovery rounds")
    others = [r for r in kube_api.requests[before:] if "watch=true" not in r and r != "/apis"]
    assert others == [], others


@pytest.mark.parametrize("form", FORMS)
def test_a_kind_whose_crd_is_deleted_is_dropped_and_found_again(cluster, form):
    """One CRD of a group deleted (the group stays served), then installed again: dropped, then watched again,
    also when the watch saw it gone before discovery did (the answer then never changed between two looks)."""
    kube_api, src, changes = cluster
    path, body = _load("virtualservices")
    kube_api.lists[path] = body
    _, dr_body = _load("destinationrules")
    kube_api.lists[BY_KIND["DestinationRule"].path("v1")] = dr_body
    _serve_discovery(kube_api, form, *APPS, ISTIO_VS, ISTIO_DR)
    src.start()
    assert _vs_names(src) == {"reviews"}

    del kube_api.lists[VS_PATH]  # the CRD deleted: its collection answers 404, discovery no longer lists it
    _serve_discovery(kube_api, form, *APPS, ISTIO_DR)
    wait_until(lambda: src.status()["VirtualService"]["version"] is None and not _vs_names(src), timeout=30,
               what="the VirtualServices dropped")
    assert ("VirtualService", "RELIST") in changes[-3:]  # the snapshot is rebuilt without them
    assert src.status()["DestinationRule"]["version"] == "v1"  # the group's other kind stays
    wait_until(lambda: not any(t.name == "kube-watch-VirtualService" and t.is_alive() for t in src._threads),
               timeout=30, what="its watch thread to end")

    kube_api.lists[VS_PATH] = body  # and installed again: watched again
    _serve_discovery(kube_api, form, *APPS, ISTIO_VS, ISTIO_DR)
    wait_until(lambda: _vs_names(src) == {"reviews"}, timeout=30,
               what=f"the VirtualService listed again ({src.status()['VirtualService']})")
    wait_until(lambda: any(t.name == "kube-watch-VirtualService" and t.is_alive() for t in src._threads),
               timeout=30, what="a new watch thread")


def test_a_kind_whose_served_version_moves_keeps_its_objects(cluster):
    """networking.istio.io/v1 dropped, v1beta1 still served: the kind moves to v1beta1, its objects never gone."""
    kube_api, src, changes = cluster
    path, body = _load("virtualservices")
    kube_api.lists[path] = body
    _serve_discovery(kube_api, "aggregated", *APPS, ISTIO_VS)
    src.start()
    assert src.status()["VirtualService"]["version"] == "v1"
    seen: list[set[str]] = []
    src.on_change = lambda kind, ev, obj: seen.append(_vs_names(src)) if kind == "VirtualService" else None
    kube_api.lists[VS.path("v1beta1")] = body
    del kube_api.lists[VS_PATH]
    _serve_discovery(kube_api, "aggregated", *APPS, "networking.istio.io/v1beta1/virtualservices")
    wait_until(lambda: src.status()["VirtualService"]["version"] == "v1beta1", timeout=30, what="the move to v1beta1")
    assert _vs_names(src) == {"reviews"} and all(names == {"reviews"} for names in seen), seen
