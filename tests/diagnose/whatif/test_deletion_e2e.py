"""Predict a deletion, then delete for real on the shared bundled mesh, and compare per edge.

Two deletions whose absence breaks traffic in different ways, predicted and applied together (one window
each side: the cost of this test is filling them): the DestinationRule defining the subsets a VirtualService
routes to (503 NC, no cluster), and a workload's PERMISSIVE exception under a STRICT namespace while its
caller sends plaintext (the server refuses the connection). The state runs long enough to fill a window,
POST /api/v1/impact with `delete` predicts the broken (caller, host) edges and shares and which deletion
breaks each, both objects are deleted through the mesh's own API, and the failures measured after the push
must agree with the ones before plus the prediction (Wilson intervals, as test_impact_e2e.py).
"""
from __future__ import annotations

import time

import httpx
import pytest

from tests.diagnose.whatif.test_impact_e2e import (
    HOST, TRAFFIC_RPS, _broken_shares, _enough, _objects, _window_start, agree)
from tests.diagnose.whatif.test_impact_e2e import _requests as _source_requests
from tests.util import wait_until

pytestmark = pytest.mark.e2e

# the state before: reviews routed to subsets, bookinfo STRICT but details PERMISSIVE by exception while
# productpage sends it plaintext (its DestinationRule says DISABLE)
SETUP = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 60}
    - {destination: {host: reviews, subset: v2}, weight: 40}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: bookinfo}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: details-legacy, namespace: bookinfo}
spec: {selector: {matchLabels: {app: details}}, mtls: {mode: PERMISSIVE}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: details, namespace: bookinfo}
spec:
  host: details
  trafficPolicy: {tls: {mode: DISABLE}}
  subsets: [{name: v1, labels: {version: v1}}]
"""
# deleted together: the subsets' DestinationRule (503 NC) and the PERMISSIVE exception (plaintext refused)
DELETED = {"DestinationRule/bookinfo/reviews": "reviews", "PeerAuthentication/bookinfo/details-legacy": "details"}


def _requests(stack, since: float):
    """Source-reported requests, a request that reached no cluster (NC) filed under its service: Istio's client
    reporter names such a request by its Host header (`reviews:9080`), not the service's FQDN."""
    df = _source_requests(stack, since)
    short = df["host"].str.contains(":", regex=False) & ~df["host"].str.contains(".", regex=False)
    df.loc[short, "host"] = df.loc[short, "host"].str.split(":").str[0].map(HOST.format)
    return df


def _predict_delete(api: str, refs: list[str], window: float) -> tuple[dict, dict[tuple[str, str], tuple[float, float]]]:
    r = httpx.post(f"{api}/api/v1/impact", json={"delete": refs, "window": f"{int(window)}s"},
                   headers={"X-Meshscope-CSRF": "1"}, timeout=120)
    assert r.status_code == 200, r.text
    body = r.json()
    broken: dict[tuple[str, str], float] = {}
    total: dict[tuple[str, str], float] = {}
    for i in body["impacts"]:
        if i["broken_rps"] > 0 and i["certain"]:
            k = (i["source"].split("/", 1)[1], i["host"])
            broken[k] = broken.get(k, 0.0) + i["broken_rps"]
            total[k] = i["edge_rps"]
    return body, {k: (min(1.0, v / total[k]), total[k] * body["window_s"]) for k, v in broken.items()}


def test_deletion_prediction_matches_reality_per_edge(stack, mesh_config, mesh_traffic):
    mesh = mesh_config
    mesh_traffic(TRAFFIC_RPS)
    api = f"http://127.0.0.1:{stack.options.port}"
    mesh.reset()
    mesh.apply(_objects(SETUP))
    base = _window_start(stack, time.time())
    for host in DELETED.values():
        wait_until(lambda: _enough(stack, base, host), timeout=90, interval=0.5, what=f"traffic to {host} before")
    body, predicted = _predict_delete(api, list(DELETED), time.time() - base)
    before = _broken_shares(_requests(stack, base), all_edges=True)
    assert body["predicted"] and not body["no_traffic"], body
    # each deletion breaks its own edge, and each broken edge names the deletion that breaks it
    assert set(predicted) == {("productpage-v1", HOST.format(h)) for h in DELETED.values()}, body["impacts"]
    for i in body["impacts"]:
        if i["broken_rps"] > 0:
            [ref] = [r for r, h in DELETED.items() if i["host"] == HOST.format(h)]
            assert [d.split(" (")[0] for d in i["deleted"]] == [ref.replace("/", " ", 1)], i
    gone = [o for o in mesh.objects if f"{o.kind}/{o.namespace}/{o.name}" in DELETED]
    assert len(gone) == len(DELETED)
    mesh.delete(gone)
    after = _window_start(stack, time.time())

    def measured():
        got = _requests(stack, after)
        return (got,) if all(got.loc[got["host"] == HOST.format(h), "n"].sum() >= 60 for h in DELETED.values()) else None

    (df,) = wait_until(measured, timeout=120, interval=0.5, what="traffic after the deletion")
    actual = _broken_shares(df, all_edges=True)
    for k in {k for k, (share, _) in actual.items() if share > 0} | set(predicted):
        old_share, old_n = before.get(k, (0.0, 0.0))
        new_share, new_n = predicted.get(k, (0.0, old_n))
        expect = (min(1.0, old_share + new_share), max(new_n, old_n))
        assert agree(expect, actual.get(k, (0.0, 0.0))), \
            (k, "expected", expect, "actual", actual.get(k), "before", before.get(k), body["impacts"])
    print(f"predicted {predicted} actual { {k: v for k, v in actual.items() if v[0] > 0} }")
