"""The cluster's watch feeds the config journal: who from managedFields, 410 as a gap, restart records nothing new."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from mesh.journal import Journal
from mesh.kube import KubeSource, api_client
from tests.util import wait_until

DATA = Path(__file__).parent / "data"
VS_PATH = "/apis/networking.istio.io/v1/virtualservices"


@pytest.fixture
def cluster(kube_api, tmp_path):
    kube_api.load_dir(DATA)
    return kube_api, api_client(str(kube_api.kubeconfig(tmp_path)))


def test_watch_events_relist_and_restart(cluster, tmp_path):
    server, api = cluster
    journal = Journal(tmp_path / "journal.sqlite")
    modified = copy.deepcopy(server.lists[VS_PATH]["items"][0])
    name = modified["metadata"]["name"]
    modified["metadata"]["resourceVersion"] = "2401"
    modified["metadata"]["generation"] = 7
    modified["metadata"]["managedFields"] = [
        {"manager": "kubectl-client-side-apply", "operation": "Update", "time": "2020-01-01T00:00:00Z"}]
    modified["spec"]["http"][0]["route"][0]["weight"] = 50
    gone = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired",
            "message": "too old resource version"}
    server.script_watch(VS_PATH, [{"type": "MODIFIED", "object": modified}, {"type": "ERROR", "object": gone}])
    src = KubeSource(api, journal=journal, backoff_initial=0.05)
    src.start()
    try:
        wait_until(lambda: src.status()["VirtualService"]["relists"] >= 2, timeout=30, what="relist after 410")
    finally:
        src.stop()
    first = [c for c in journal.query() if c.get("initial")]
    assert first and all(c["op"] == "create" for c in first), "the first listing is recorded as what was there"
    vs = journal.history("VirtualService", modified["metadata"]["namespace"], name)
    assert [c["op"] for c in vs] == ["update", "update", "create"]  # watched change, then the relist's list
    watched = vs[1]
    assert watched["who"] == "kubectl-client-side-apply (Update)"
    assert (watched["resource_version"], watched["generation"]) == ("2401", 7)
    assert any(d["path"] == "spec.http[0].route[0].weight" and d["new"] == 50 for d in watched["diff"])
    assert watched["skew_s"] is not None and watched["skew_s"] < 0, "a managedFields time years off is noted"
    gaps = [c for c in journal.query() if c["op"] == "gap"]
    assert len(gaps) == 1 and "410" in gaps[0]["note"]
    assert not [c for c in journal.query() if c["op"] == "delete"], "a relist is never a fake delete"

    before = journal.count()
    KubeSource(api, journal=Journal(tmp_path / "journal.sqlite")).list_all()  # a restart of meshscope
    new = journal.query()[: journal.count() - before]
    assert [c["op"] for c in new] == ["gap"], "unchanged objects are not re-recorded after a restart"
