"""Kubernetes list answers with malformed objects never stop cluster mode (#18): the real `kubernetes` client
against the replaying API server, serving Bookinfo's lists (paged with continue tokens) with objects mutated
the ways real clusters and proxies hand them out. Start succeeds, every other object is read, exactly once,
and the snapshot loop outlives a round that raises."""
from __future__ import annotations

import random

import pytest

from meshscope import config_source as cs
from meshscope.cluster import ClusterBackend, ClusterOptions
from tests.cluster.conftest import bookinfo_docs
from tests.cluster.kubedata import list_bodies
from tests.util import free_port, wait_until

# object mutations a cluster's API serves and meshscope must read past (the object itself stays readable)
MUTATIONS = {
    "null_labels": lambda o: o["metadata"].update(labels=None),
    "null_annotations": lambda o: o["metadata"].update(annotations=None),
    "labels_not_strings": lambda o: o["metadata"].update(labels={"app": 7, "v": None}),
    "no_resource_version": lambda o: o["metadata"].pop("resourceVersion", None),
    "int_resource_version": lambda o: o["metadata"].update(resourceVersion=12),
    "null_owner_references": lambda o: o["metadata"].update(ownerReferences=None),
    "self_owner": lambda o: o["metadata"].update(ownerReferences=[
        {"apiVersion": "v1", "kind": "Pod", "name": o["metadata"]["name"], "controller": True}]),
    "null_spec": lambda o: o.update(spec=None),
    "list_spec": lambda o: o.update(spec=[1, 2]),
    "unknown_fields": lambda o: o.update(weird={"x": [None]}, status="?"),
    "managed_fields": lambda o: o["metadata"].update(managedFields=[{"manager": "kubectl"}] * 50),
}


def _mutated_lists(rnd: random.Random, per_list: int = 2) -> tuple[dict[str, dict], int, dict[str, int]]:
    bodies = list_bodies(bookinfo_docs())
    applied: dict[str, int] = {}
    total = 0
    for body in bodies.values():
        items = body["items"]
        total += len(items)
        for i in rnd.sample(range(len(items)), k=min(per_list, len(items))):
            name = rnd.choice(sorted(MUTATIONS))
            MUTATIONS[name](items[i])
            applied[name] = applied.get(name, 0) + 1
    return bodies, total, applied


@pytest.mark.parametrize("seed", range(3))
def test_malformed_objects_do_not_stop_cluster_mode(kube_api, tmp_path, seed):
    rnd = random.Random(seed)
    bodies, total, applied = _mutated_lists(rnd)
    # two owner references pointing at each other (a cycle no controller makes, an API happily serves)
    rs_path = next(p for p in bodies if p.endswith("/replicasets"))
    pods_path = next(p for p in bodies if p.endswith("/pods"))
    rs, pod = bodies[rs_path]["items"][0], bodies[pods_path]["items"][0]
    rs["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
                                          "controller": True}]
    kube_api.lists.update(bodies)
    be = _started(ClusterBackend, kube_api, tmp_path, debounce_s=0.2)
    try:
        mirrored = be.source.objects()
        assert len(mirrored) == total  # every object of every list, exactly once, mutated or not
        assert len({(o.kind, o.namespace, o.name) for o in mirrored}) == total
        snap = be.snapshot()
        assert {o.name for o in snap.services()} >= {"productpage", "details", "reviews", "ratings"}
        assert cs.istio_config_hint(be.source.status(), be.objects()) is None  # Istio kinds are served
        cs.has_sidecars(be.objects())  # reads pods with null labels/annotations and odd specs without raising
        assert be.status()["kubernetes"]["state"] == "ok", (applied, be.status())
    finally:
        be.stop()


def test_rebuild_reads_past_malformed_metadata(kube_api, tmp_path):
    """An object whose metadata is not an object (after the list call) still rebuilds; its version reads as ""."""
    kube_api.lists.update(list_bodies(bookinfo_docs()))
    be = _started(ClusterBackend, kube_api, tmp_path, debounce_s=0.1)
    try:
        victim = be.source.objects()[0]
        victim.raw = {**victim.raw, "metadata": ["not", "an", "object"]}
        rebuilds = be.status()["kubernetes"]["rebuilds"]
        be._changed("Pod", "MODIFIED", None)
        wait_until(lambda: be.status()["kubernetes"]["rebuilds"] > rebuilds, timeout=20, what="a rebuild")
        assert be.status()["kubernetes"]["failed_rounds"] == 0
    finally:
        be.stop()


class _FlakyBackend(ClusterBackend):
    """Its next `fails` rebuilds raise (what an unexpected bug in one round looks like)."""
    fails = 0

    def _rebuild(self) -> None:
        if self.fails:
            self.fails -= 1
            raise RuntimeError("rebuild broke")
        super()._rebuild()


def test_snapshot_loop_survives_failing_rounds(kube_api, tmp_path):
    """Rounds that raise are counted in `failed_rounds`; a later change is rebuilt as usual."""
    kube_api.lists.update(list_bodies(bookinfo_docs()))
    be = _started(_FlakyBackend, kube_api, tmp_path, debounce_s=0.1)
    try:
        be.fails = 2
        rebuilds = be.status()["kubernetes"]["rebuilds"]

        def rebuilt() -> bool:
            be._changed("Pod", "MODIFIED", None)  # a watch event each poll: a failed round consumed the last one
            return be.status()["kubernetes"]["rebuilds"] > rebuilds
        wait_until(rebuilt, timeout=20, interval=0.3, what="a rebuild after two failing rounds")
        assert be.status()["kubernetes"]["failed_rounds"] == 2
        assert be._thread is not None and be._thread.is_alive()
    finally:
        be.stop()


def _started(cls: type[ClusterBackend], kube_api, tmp_path, debounce_s: float) -> ClusterBackend:
    """A started backend of `cls` over the replaying API server, its Prometheus a closed port (config only)."""
    be = cls(ClusterOptions(prometheus_url=f"http://127.0.0.1:{free_port()}", kubeconfig=str(kube_api.kubeconfig(tmp_path)),
                            debounce_s=debounce_s, prometheus_timeout=2))
    be.start()
    return be
