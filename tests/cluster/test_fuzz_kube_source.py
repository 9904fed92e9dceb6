"""One malformed Kubernetes object never stops config ingestion (#18): the real `kubernetes` client against the
replaying API server, serving the recorded list responses (tests/mesh/kube/data) with unreadable objects
mixed in and watch streams carrying unreadable events. Every good object is read exactly once, every bad one
is counted per kind and reason with a sample, `start()` succeeds, and a kind's watch thread outlives bad
events and failing rounds, resuming from the last resourceVersion it saw."""
from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest

import mesh.kube.source as source_mod
from collector import selfmetrics
from mesh.kube import KubeSource, api_client, sidecar_status
from mesh.kube.kinds import BY_KIND, KINDS
from meshscope.cluster import ClusterBackend, ClusterOptions
from tests.fixtures import kubeapi
from tests.util import free_port, wait_until

DATA = Path(__file__).resolve().parents[1] / "mesh" / "kube" / "data"
VS = BY_KIND["VirtualService"]
VS_PATH = VS.path("v1")


def _meta(o: dict) -> dict:
    return o.setdefault("metadata", {})


# an item no object can be made of, by the reason it is counted under; each takes a good item (a copy)
BAD = {
    "not_an_object": [lambda o: "a string", lambda o: [o], lambda o: 7, lambda o: None],
    "metadata_not_an_object": [lambda o: {**o, "metadata": ["x"]}, lambda o: {**o, "metadata": "m"}],
    "bad_name": [lambda o: {**o, "metadata": {**_meta(o), "name": 7}},
                 lambda o: {**o, "metadata": {k: v for k, v in _meta(o).items() if k != "name"}},
                 lambda o: {**o, "metadata": {**_meta(o), "name": ["a"]}}],
    "bad_namespace": [lambda o: {**o, "metadata": {**_meta(o), "namespace": ["bookinfo"]}},
                      lambda o: {**o, "metadata": {**_meta(o), "namespace": {"n": 1}}}],
    "labels_not_an_object": [lambda o: {**o, "metadata": {**_meta(o), "labels": ["app=x"]}},
                             lambda o: {**o, "metadata": {**_meta(o), "labels": "app=x"}}],
    "annotations_not_an_object": [lambda o: {**o, "metadata": {**_meta(o), "annotations": 5}}],
}
# odd but readable: the object is kept
GOOD = [
    lambda o: _meta(o).update(labels=None, annotations=None),
    lambda o: _meta(o).update(resourceVersion=["1"]),
    lambda o: o.update(spec="nope"),
    lambda o: o.update(apiVersion=5),
    lambda o: _meta(o).update(managedFields=[{"manager": "kubectl"}] * 3),
]


def _served(lists: dict[str, dict]) -> dict[str, str]:
    """{collection path: kind} of the collections the source reads (the first served version of each kind)."""
    out = {}
    for info in KINDS:
        path = next((info.path(v) for v in info.versions if info.path(v) in lists), None)
        if path:
            out[path] = info.kind
    return out


def _mutate(lists: dict[str, dict], rnd: random.Random) -> tuple[set, dict[tuple[str, str], int]]:
    """Insert bad items among each list's good ones (odd-but-good mutations on some); returns the objects
    expected (kind, namespace, name) and the bad ones per (kind, reason)."""
    expected: set = set()
    bad: dict[tuple[str, str], int] = {}
    for path, kind in _served(lists).items():
        items = lists[path]["items"]
        originals = list(items)
        for item in originals:
            expected.add((kind, item["metadata"].get("namespace"), item["metadata"]["name"]))
            if rnd.random() < 0.3:
                rnd.choice(GOOD)(item)
        if not originals:
            continue
        for _ in range(rnd.randint(1, 3)):
            reason = rnd.choice(sorted(BAD))
            items.insert(rnd.randint(0, len(items)), rnd.choice(BAD[reason])(copy.deepcopy(rnd.choice(originals))))
            bad[(kind, reason)] = bad.get((kind, reason), 0) + 1
    return expected, bad


@pytest.mark.parametrize("seed", range(4))
def test_lists_with_unreadable_items_are_read_past(kube_api, tmp_path, monkeypatch, seed):
    """start() succeeds; every good object of every (paged) list is read exactly once; every bad one counted."""
    kube_api.load_dir(DATA)
    expected, bad = _mutate(kube_api.lists, random.Random(seed))
    monkeypatch.setattr(source_mod, "PAGE_SIZE", 2)  # bad items fall on page boundaries too
    told: dict[tuple[str, str], int] = {}

    def on_malformed(kind, reason, message, sample):
        told[(kind, reason)] = told.get((kind, reason), 0) + 1
    src = KubeSource(api_client(str(kube_api.kubeconfig(tmp_path))), on_malformed=on_malformed, backoff_initial=0.5)
    src.start()
    try:
        mirrored = [(o.kind, o.namespace, o.name) for o in src.objects()]
        assert len(mirrored) == len(set(mirrored)) and set(mirrored) == expected
        status = src.status()
        counted = {(k, r): n for k, st in status.items() for r, n in st["malformed"].items()}
        assert counted == bad == told
        for kind in {k for k, _ in bad}:
            assert status[kind]["malformed_sample"].split(":")[0] in BAD
            assert status[kind]["version"] and status[kind]["last_error"] == ""
        assert all(t.is_alive() for t in src._threads)
    finally:
        src.stop()


def _vs(name: str, rv: int, weight: int = 100) -> dict:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": "bookinfo", "resourceVersion": str(rv)},
            "spec": {"hosts": [name], "http": [{"route": [{"destination": {"host": name}, "weight": weight}]}]}}


def _bad_events(rv: int) -> tuple[list, dict[str, int]]:
    """Every class of unreadable event (the last readable resourceVersion among them is `rv`)."""
    good = _vs("x", rv)
    events = [{"type": "ADDED", "object": "a string"}, {"type": "MODIFIED", "object": None},
              [1, 2], "an event", {"type": "SOMETHING", "object": _vs("y", rv - 1)},
              *[{"type": "ADDED", "object": f(copy.deepcopy(good))} for fs in BAD.values() for f in fs[:1]]]
    reasons = {"not_an_object": 3, "undecodable_event": 2, "unknown_event_type": 1}
    for r in BAD:
        reasons[r] = reasons.get(r, 0) + (r != "not_an_object")
    # the last one keeps its resourceVersion: the source resumes after it
    events.append({"type": "MODIFIED", "object": {**good, "metadata": {**good["metadata"], "labels": "bad"}}})
    reasons["labels_not_an_object"] += 1
    return events, reasons


class RawLine(str):
    """A watch line sent as these bytes, not as JSON (what a broken proxy or truncated write hands out)."""


class _RawJson:
    """Stands in for `json` in the replaying server: a RawLine event goes out as it is."""
    loads = staticmethod(json.loads)

    @staticmethod
    def dumps(obj, **kw):
        return str(obj) if isinstance(obj, RawLine) else json.dumps(obj, **kw)


RAW_LINES = {"undecodable_event": [RawLine('{"type": "ADDED", "object": {"metadata": '), RawLine("<html>502</html>")],
             "event_over_limit": [RawLine("[" * 5000 + "]" * 5000)]}  # nests past the decoder's depth


class _FlakySource(KubeSource):
    """Its watch's next `fails` rounds raise (what an unexpected bug in one round looks like)."""
    fails = 0

    def _watch(self, st):
        if self.fails:
            self.fails -= 1
            raise RuntimeError("watch round broke")
        return super()._watch(st)


def test_watch_outlives_bad_events_and_failing_rounds(kube_api, tmp_path, monkeypatch):
    kube_api.load_dir(DATA)
    monkeypatch.setattr(kubeapi, "json", _RawJson)
    bad_events, reasons = _bad_events(3001)
    for reason, lines in RAW_LINES.items():
        bad_events[1:1] = lines
        reasons[reason] = reasons.get(reason, 0) + len(lines)
    kube_api.script_watch(VS_PATH, [*bad_events, {"type": "ADDED", "object": _vs("after-bad", 3002)}])
    changes: list[tuple[str, str]] = []
    relist_fails = []

    def on_change(kind, etype, obj):
        if obj is not None and obj.name == "boom":
            raise ValueError("a consumer bug")
        if etype == "RELIST" and relist_fails:
            relist_fails.pop()
            raise ValueError("a consumer bug on relist")
        changes.append((etype, obj.name if obj is not None else ""))
    src = _FlakySource(api_client(str(kube_api.kubeconfig(tmp_path))), kinds=[VS], on_change=on_change,
                       backoff_initial=0.05, backoff_max=0.2)
    src.start()
    try:
        wait_until(lambda: any(o.name == "after-bad" for o in src.objects()), timeout=30, what="the good event")
        st = src.status()["VirtualService"]
        assert st["malformed"] == reasons, st["malformed_sample"]
        assert not {"x", "y"} & {o.name for o in src.objects()}
        assert changes.count(("ADDED", "after-bad")) == 1
        # the next watch resumes after the last event seen (3002), not from the list's version
        wait_until(lambda: any("resourceVersion=3002" in r for r in kube_api.requests if "watch=true" in r),
                   timeout=30, what="a watch resumed from 3002")

        # two rounds raise, then an event whose consumer raises, then a good one: the thread goes on
        src.fails = 2
        wait_until(lambda: src.status()["VirtualService"]["failed_rounds"] >= 2, timeout=30, what="two failed rounds")
        kube_api.script_watch(VS_PATH, [{"type": "ADDED", "object": _vs("boom", 3003)},
                                        {"type": "MODIFIED", "object": _vs("after-bad", 3004, 50)}])
        wait_until(lambda: ("MODIFIED", "after-bad") in changes, timeout=30, what="the event after failing rounds")
        st = src.status()["VirtualService"]
        assert st["failed_rounds"] == 2 and st["malformed"]["apply_failed"] == 1
        mirrored = {o.name: o for o in src.objects()}
        assert mirrored["after-bad"].spec["http"][0]["route"][0]["weight"] == 50
        assert st["resource_version"] == "3004"
        assert all(t.is_alive() for t in src._threads)

        # a 410 whose relist raises (a consumer bug) is one more failed round; the watch relists again and goes on
        relist_fails.append(1)
        gone = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired"}
        relists = src.status()["VirtualService"]["relists"]
        kube_api.script_watch(VS_PATH, [{"type": "ERROR", "object": gone}])
        wait_until(lambda: src.status()["VirtualService"]["failed_rounds"] >= 3, timeout=30, what="the relist failed")
        kube_api.script_watch(VS_PATH, [{"type": "ERROR", "object": gone}],
                              [{"type": "ADDED", "object": _vs("after-relist", 9000)}])
        wait_until(lambda: ("ADDED", "after-relist") in changes, timeout=30, what="an event after the relists")
        st = src.status()["VirtualService"]
        assert st["failed_rounds"] == 3 and st["relists"] >= relists + 2 and not relist_fails
        assert all(t.is_alive() for t in src._threads)
    finally:
        src.stop()


def test_cluster_mode_counts_skipped_objects_in_the_collector_metrics(kube_api, tmp_path):
    """serve's backend starts over bad objects; they show in meshscope_collector_malformed_total{source=kube}."""
    kube_api.load_dir(DATA)
    pods = kube_api.lists["/api/v1/pods"]["items"]
    pods.insert(1, {**copy.deepcopy(pods[0]), "metadata": ["not", "an", "object"]})
    before = selfmetrics.malformed_total(source="kube", origin="k8s:test/Pod", reason="metadata_not_an_object")
    be = ClusterBackend(ClusterOptions(prometheus_url=f"http://127.0.0.1:{free_port()}", prometheus_timeout=1,
                                       kubeconfig=str(kube_api.kubeconfig(tmp_path)), context="test",
                                       debounce_s=0.2))
    be.start()
    try:
        assert len([o for o in be.source.objects() if o.kind == "Pod"]) == len(pods) - 1
        assert selfmetrics.malformed_total(source="kube", origin="k8s:test/Pod",
                                           reason="metadata_not_an_object") == before + 1
        recent = selfmetrics.recent_rejects(5, "kube")
        assert recent and recent[0].origin == "k8s:test/Pod" and "not" in recent[0].sample
    finally:
        be.stop()


# pod parts of the wrong shape (on top of BAD and GOOD): sidecar_status reads them as absent
POD_PARTS = [
    lambda o: o.update(spec={"containers": [None, "istio-proxy", ["x"]], "initContainers": {"name": "istio-init"}}),
    lambda o: o.update(status=["Running"]),
    lambda o: _meta(o).setdefault("annotations", {}).update({"sidecar.istio.io/status": 5}),
    lambda o: _meta(o).setdefault("annotations", {}).update({"sidecar.istio.io/status": "[" * 5000}),
]


def test_sidecar_status_reads_any_pod_shape():
    """No pod shape raises; mutations of parts it does not read leave its answer as it was."""
    pods = json.loads((DATA / "pods.json").read_text())["items"]
    neutral = (GOOD[1], GOOD[3], GOOD[4])  # resourceVersion, apiVersion, managedFields
    for pod in pods:
        plain = sidecar_status(pod)
        for mutate in [*POD_PARTS, *GOOD]:
            mutated = copy.deepcopy(pod)
            mutate(mutated)
            got = sidecar_status(mutated)
            assert isinstance(got["injected"], bool) and isinstance(got["annotation"], bool)
            if mutate in neutral:
                assert got == plain
        for bad in (f(copy.deepcopy(pod)) for fs in BAD.values() for f in fs):
            got = sidecar_status(bad)
            assert isinstance(got["injected"], bool) and isinstance(got["annotation"], bool)


def test_unreadable_deleted_events_still_remove_their_object(kube_api, tmp_path):
    """A DELETED event whose object cannot be read removes the mirrored object by what it still says (its uid, else
    namespace and name); one that identifies nothing lists the kind again. Every such event is counted."""
    names = [f"d{i}" for i in range(20)]
    listed = []
    for i, name in enumerate(names):
        item = {k: v for k, v in _vs(name, 100 + i).items() if k not in ("apiVersion", "kind")}
        item["metadata"]["uid"] = f"uid-{name}"
        listed.append(item)
    kube_api.lists[VS_PATH] = {"kind": "VirtualServiceList", "apiVersion": "networking.istio.io/v1",
                               "metadata": {"resourceVersion": "200"}, "items": list(listed)}
    # every BAD variant on a deleted object; the metadata-level ones keep the uid, one more loses its uid too
    variants = [(reason, f) for reason, fs in BAD.items() for f in fs]
    identifiable, anonymous = [], []
    for (reason, f), item in zip(variants, listed):
        obj = f(copy.deepcopy(item))
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        (identifiable if isinstance(meta, dict) else anonymous).append((reason, item["metadata"]["name"], obj))
    no_uid = copy.deepcopy(listed[len(variants)])
    no_uid["metadata"].pop("uid")
    no_uid["metadata"]["annotations"] = "not an object"
    identifiable.append(("annotations_not_an_object", no_uid["metadata"]["name"], no_uid))
    assert len(identifiable) == 9 and len(anonymous) == 6  # 14 variants: 8 with readable metadata, 6 without
    changes: list[tuple[str, str]] = []
    src = KubeSource(api_client(str(kube_api.kubeconfig(tmp_path))), kinds=[VS], backoff_initial=0.05,
                     on_change=lambda kind, etype, o: changes.append((etype, o.name if o is not None else "")))
    src.start()
    try:
        # phase 1: events that identify their object; the list still holds them (no relist may be needed)
        rv = 300
        for _, _, obj in identifiable:
            rv += 1
            if isinstance(obj.get("metadata"), dict):
                obj["metadata"] = {**obj["metadata"], "resourceVersion": str(rv)}
        kube_api.script_watch(VS_PATH, [{"type": "DELETED", "object": obj} for _, _, obj in identifiable])
        gone = {name for _, name, _ in identifiable}
        wait_until(lambda: not gone & {o.name for o in src.objects()}, timeout=30, what="identified objects removed")
        st = src.status()["VirtualService"]
        assert st["unreadable_deletes"] == {"removed": len(identifiable)} and st["relists"] == 1
        assert sorted(n for e, n in changes if e == "DELETED") == sorted(gone)
        assert {o.name for o in src.objects()} == set(names) - gone
        # phase 2: the cluster deleted everything; events that name nothing: each lists the kind again
        kube_api.lists[VS_PATH]["items"] = []
        kube_api.lists[VS_PATH]["metadata"]["resourceVersion"] = "400"
        for _, _, obj in anonymous:
            kube_api.script_watch(VS_PATH, [{"type": "DELETED", "object": obj}])
        wait_until(lambda: src.status()["VirtualService"]["unreadable_deletes"].get("relisted") == len(anonymous),
                   timeout=30, what="a relist per unidentifiable DELETED event")
        assert src.objects() == []
        st = src.status()["VirtualService"]
        expected: dict[str, int] = {}
        for reason, _, _ in identifiable + anonymous:
            expected[reason] = expected.get(reason, 0) + 1
        assert st["malformed"] == expected
        assert all(t.is_alive() for t in src._threads)
    finally:
        src.stop()


# what an API server answers for an expired continue token or watch resourceVersion: the 410 as the HTTP status
EXPIRED = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Expired", "code": 410,
           "message": "The provided continue parameter is too old to display a consistent list result."}


def test_expired_continue_token_and_watch_version_answered_as_http_410(kube_api, tmp_path, monkeypatch):
    """A 410 Gone that arrives as the answer's HTTP status (not as a watch ERROR event): a list whose continue token
    expired between pages is listed again whole, a watch whose resourceVersion is gone relists; neither stops start()
    nor leaves the watch retrying the version that is gone."""
    kube_api.load_dir(DATA)
    pods_path = "/api/v1/pods"
    expected = {(p["metadata"].get("namespace"), p["metadata"]["name"]) for p in kube_api.lists[pods_path]["items"]}
    assert len(expected) >= 3
    monkeypatch.setattr(source_mod, "PAGE_SIZE", 2)
    kube_api.failures.append((lambda path: path.startswith(pods_path + "?") and "continue=" in path, 410, EXPIRED))
    kube_api.failures.append((lambda path: path.startswith(VS_PATH + "?") and "watch=true" in path, 410,
                              {**EXPIRED, "message": "too old resource version: 2301 (2400)"}))
    src = KubeSource(api_client(str(kube_api.kubeconfig(tmp_path))), kinds=[BY_KIND["Pod"], VS], backoff_initial=0.05)
    src.start()
    try:
        assert {(o.namespace, o.name) for o in src.objects() if o.kind == "Pod"} == expected
        pod_lists = [r for r in kube_api.requests if r.split("?")[0] == pods_path and "watch=true" not in r]
        assert "continue=" in pod_lists[-2] and "limit=" not in pod_lists[-1]  # listed again in one request
        wait_until(lambda: src.status()["VirtualService"]["relists"] >= 2, timeout=30, what="a relist after HTTP 410")
        kube_api.script_watch(VS_PATH, [{"type": "ADDED", "object": _vs("after-410", 5000)}])
        wait_until(lambda: any(o.name == "after-410" for o in src.objects()), timeout=30, what="the watch going on")
        assert not kube_api.failures
        assert all(t.is_alive() for t in src._threads)
    finally:
        src.stop()
