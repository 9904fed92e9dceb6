"""End to end on the shared mesh: a scenario applied as a change, among unrelated changes, is the change the
live finding names first; the journal answers /api/v1/changes with who made each change."""
from __future__ import annotations

import time

import httpx
import pytest

from diagnose.changes import ROLLBACK_MARK
from mesh.config import load_text
from tests.util import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OTHER_NAMESPACE = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: inventory, namespace: shop}
spec: {host: inventory.shop.svc.cluster.local, trafficPolicy: {tls: {mode: DISABLE}}}
"""
SAME_NAMESPACE = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: billing-allow, namespace: bookinfo}
spec: {selector: {matchLabels: {app: billing}}, action: ALLOW, rules: [{}]}
"""


def _objects(text: str, name: str):
    return load_text(text, name, exclude_namespaces=frozenset()).objects


def test_the_scenario_change_ranks_first_among_unrelated_changes(stack, bundled_mesh, mesh_scenario):
    t0 = time.time()
    scenario = mesh_scenario("fault-abort")  # a scenario resets to the baseline, so the unrelated changes follow it
    bundled_mesh.apply(_objects(OTHER_NAMESPACE, "other.yaml"), who="meshscope apply -f other.yaml")
    bundled_mesh.apply(_objects(SAME_NAMESPACE, "same.yaml"), who="meshscope apply -f same.yaml")
    dest = scenario.edge[1]

    def named():
        for f in stack.source.findings({"status": "open"}):
            if (f.get("evidence") or {}).get("edge_key") == dest and f.get("changes") and f["first_seen"] >= t0:
                return f
        return None

    f = wait_until(named, timeout=90, interval=1.0, what=f"an open finding on {dest} with ranked changes")
    top = f["changes"][0]
    assert top["ref"] == scenario.blame and top["who"] == "meshscope mesh scenario fault-abort", f["changes"]
    assert f["evidence"]["changed_before"].startswith("started ") and scenario.blame in f["evidence"]["changed_before"]
    assert ROLLBACK_MARK in f["remediation"] and "kind: VirtualService" in f["remediation"]

    with httpx.Client(base_url=stack.ui.url, timeout=60) as api:
        recent = api.get("/api/v1/changes", params={"since": "-600"}).json()
        by_ref = {c["ref"]: c for c in reversed(recent)}  # the newest entry per object
        assert by_ref["DestinationRule shop/inventory"]["who"] == "meshscope apply -f other.yaml"
        assert by_ref["AuthorizationPolicy bookinfo/billing-allow"]["op"] == "create"
        assert by_ref[scenario.blame]["who"] == "meshscope mesh scenario fault-abort"
