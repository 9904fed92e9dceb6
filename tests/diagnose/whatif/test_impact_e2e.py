"""Predict, then apply for real on the shared bundled mesh, and compare per edge: each kind of change.

For every change: the state before it runs long enough to fill a window, POST /api/v1/impact of the
running stack predicts which (caller, host) edges break and what share of their requests, the change is
applied for real, and the requests that then fail (as the callers' sidecars report them) are measured
over a window that starts after the push. Prediction and reality must name the same broken edges with
the same broken share (within sampling noise); a weight shift must land where the prediction says.
"""
from __future__ import annotations

import time

import httpx
import pandas as pd
import pytest

from collector import schema
from diagnose.whatif import edges_of
from mesh.config import load_text
from tests.util import wait_until

pytestmark = pytest.mark.e2e

NS = "bookinfo"
HOST = "{}.bookinfo.svc.cluster.local"
SLACK_S = 2.5  # push + one scrape: samples this close to a change may straddle it
SHARE_TOL = 0.15

SUBSETS = """  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
"""
CASES = {
    "strict-vs-plaintext": (
        f"""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: details, namespace: bookinfo}}
spec:
  host: details
  trafficPolicy: {{tls: {{mode: DISABLE}}}}
""",
        """apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: bookinfo}
spec: {mtls: {mode: STRICT}}
"""),
    "authz-deny": (None, """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-productpage, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: reviews}}
  action: DENY
  rules: [{from: [{source: {principals: ["cluster.local/ns/bookinfo/sa/bookinfo-productpage"]}}]}]
"""),
    "subset-without-workload": (None, """apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews
""" + SUBSETS + """  - {name: v4, labels: {version: v4}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 50}
    - {destination: {host: reviews, subset: v4}, weight: 50}
"""),
    "weight-shift": (None, """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v2}, weight: 25}
    - {destination: {host: reviews, subset: v3}, weight: 75}
"""),
}


def _objects(text: str):
    got = load_text(text, "change.yaml")
    assert not got.problems, got.problems
    return got.objects


def _requests(stack, since: float) -> pd.DataFrame:
    """Source-reported requests per (caller, host, destination workload, code) since `since` (epoch s)."""
    window = time.time() - since
    r = stack.backend.rates(window)
    r = r[(r[schema.METRIC].astype(str) == schema.ISTIO_REQUESTS_TOTAL) & (r[schema.REPORTER].astype(str) == "source")]
    return pd.DataFrame({"src": r[schema.SOURCE_WORKLOAD].astype(str).to_numpy(),
                         "host": r[schema.DESTINATION_SERVICE].astype(str).to_numpy(),
                         "dst": r[schema.DESTINATION_WORKLOAD].astype(str).to_numpy(),
                         "bad": ~r[schema.RESPONSE_CODE].astype(str).str.match(r"^[23]").to_numpy(),
                         "rps": r[schema.RATE].to_numpy(dtype=float), "n": r[schema.RATE].to_numpy(dtype=float) * window})


def _enough(stack, since: float, host: str, n: float = 60) -> bool:
    df = _requests(stack, since)
    return bool(df.loc[df["host"] == HOST.format(host), "n"].sum() >= n)


def _broken_shares(df: pd.DataFrame) -> dict[tuple[str, str], float]:
    df = df[df["rps"] > 0]
    bad = df[df["bad"]].groupby(["src", "host"])["rps"].sum()
    total = df.groupby(["src", "host"])["rps"].sum()
    return {k: float(bad[k] / total[k]) for k in bad.index if bad[k] / total[k] > 0.05}


def _predict(api: str, stack, text: str, window: float) -> tuple[dict, dict[tuple[str, str], float]]:
    r = httpx.post(f"{api}/api/v1/impact", json={"yaml": text, "window": f"{int(window)}s"},
                   headers={"X-Meshscope-CSRF": "1"}, timeout=120)
    assert r.status_code == 200, r.text
    body = r.json()
    edges = edges_of(stack.backend.rates(int(window)))
    total = edges.groupby(["s_wl", "d_host"])["rps"].sum()
    broken: dict[tuple[str, str], float] = {}
    for i in body["impacts"]:
        if i["broken_rps"] > 0:
            k = (i["source"].split("/", 1)[1], i["host"])
            broken[k] = broken.get(k, 0.0) + i["broken_rps"]
    return body, {k: v / float(total.get(k, v)) for k, v in broken.items()}


def test_prediction_matches_reality_per_edge(stack, mesh_config):
    mesh = mesh_config
    api = stack.ui.url if hasattr(stack.ui, "url") else f"http://127.0.0.1:{stack.options.port}"
    for name, (setup, change) in CASES.items():
        mesh.reset()
        if setup:
            mesh.apply(_objects(setup))
        base = time.time() + SLACK_S
        wait_until(lambda: _enough(stack, base, "reviews"), timeout=90, interval=0.5, what=f"{name}: traffic before")
        live_before = [(o.ref, repr(o.spec)) for o in mesh.objects]
        body, predicted = _predict(api, stack, change, time.time() - base)
        assert body["predicted"] and not body["no_traffic"], (name, body)
        assert [(o.ref, repr(o.spec)) for o in mesh.objects] == live_before  # predicting changed nothing
        mesh.apply(_objects(change))
        after = time.time() + SLACK_S
        hosts = {h.split(".")[0] for _, h in predicted} or {"reviews"}

        def measured() -> pd.DataFrame | None:
            got = _requests(stack, after)
            counts = got.groupby("host")["n"].sum()
            return (got,) if all(counts.get(HOST.format(h), 0) >= 60 for h in hosts) else None

        (df,) = wait_until(measured, timeout=120, interval=0.5, what=f"{name}: traffic after")
        actual = _broken_shares(df)
        assert set(predicted) == set(actual), (name, predicted, actual, body["impacts"])
        for k, share in predicted.items():
            assert abs(share - actual[k]) <= SHARE_TOL, (name, k, share, actual[k])
        if name == "weight-shift":
            shift = next(i for i in body["impacts"] if i["kind"] == "shift")["shift"]
            got = df[(df["src"] == "productpage-v1") & (df["host"] == HOST.format("reviews"))]
            share = got.groupby("dst")["rps"].sum() / got["rps"].sum()
            assert abs(share.get("reviews-v3", 0) - 0.75) <= SHARE_TOL and share.get("reviews-v1", 0) < 0.05, share
            assert shift[HOST.format("reviews") + "/v3"] > 0 and shift[HOST.format("reviews")] < 0
        print(f"{name}: predicted {predicted} actual {actual}")


DRY_RUN_DENY = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ratings-deny-dry, namespace: bookinfo, annotations: {istio.io/dry-run: "true"}}
spec:
  selector: {matchLabels: {app: ratings}}
  action: DENY
  rules: [{from: [{source: {namespaces: ["bookinfo"]}}]}]
"""


def test_dry_run_policy_denies_nothing_and_its_shadow_decisions_match_the_prediction(stack, mesh_config):
    """Envoy's shadow counters rise while every request still succeeds; the replay of the same policy
    without the annotation names the same callers."""
    from diagnose.whatif.dryrun import dry_run_findings, shadow_counts

    mesh = mesh_config
    mesh.reset()
    ratings = next(w for w in mesh.registry.workloads if w.name == "ratings-v1")
    mesh.apply(_objects(DRY_RUN_DENY))
    after = time.time() + SLACK_S

    def shadow():
        c = shadow_counts(httpx.get(f"http://127.0.0.1:{ratings.stats_port}/stats/prometheus", timeout=10).text)
        return c if c is not None and c.denied >= 20 else None

    count = wait_until(shadow, timeout=90, interval=0.5, what="shadow denials on ratings")
    wait_until(lambda: _enough(stack, after, "ratings", 40), timeout=90, interval=0.5, what="ratings traffic")
    df = _requests(stack, after)
    to_ratings = df[df["host"] == HOST.format("ratings")]
    assert to_ratings["rps"].sum() > 0 and not to_ratings["bad"].any()  # dry run: nothing denied
    live = list(stack.backend.snapshot().objects)
    [f] = dry_run_findings(live, {("bookinfo", "ratings-v1"): count}, stack.backend.rates(time.time() - after),
                           time.time() - after)
    assert f.code == "MS5006" and f.evidence["shadow_denied"] >= 20 and f.evidence["predicted_rps"] > 0
