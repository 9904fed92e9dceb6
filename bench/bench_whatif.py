"""What-if speed: the impact of one proposed policy over a 10k-workload / 30k-edge window (goal < 2 s).

Figures (best of 3, same synthetic mesh, same run):
- reading the window into edges (`edges_of`), the floor every prediction pays: the baseline;
- one namespace-scoped ALLOW AuthorizationPolicy (touches that namespace's workloads);
- one mesh-wide STRICT PeerAuthentication (touches every workload: the worst case);
- one VirtualService shifting a service's weights to a subset;
- canary verdicts for every split service of the same mesh per refresh (goal < 200 ms), vs reading the
  window into edges; and the same compared step by step over a 3-step rollout, vs one window.
"""
from __future__ import annotations

import numpy as np

from bench.common import best_of, report
from collector import schema
from diagnose.canary import evaluate
from diagnose.canary.verdict import Period, evaluate_periods
from diagnose.whatif import edges_of, predict
from mesh.config.model import ConfigObject
from topology.synthetic import synthetic_rates


def _mesh(rates) -> list[ConfigObject]:  # noqa: ANN001
    """Deployments and Services for every workload and service in the synthetic window."""
    dest = rates[[schema.DESTINATION_WORKLOAD, schema.DESTINATION_WORKLOAD_NAMESPACE, schema.DESTINATION_APP,
                  schema.DESTINATION_VERSION]].astype(str).drop_duplicates()
    objs = []
    for wl, ns, app, ver in dest.itertuples(index=False):
        labels = {"app": app, "version": ver}
        objs.append(ConfigObject("apps/v1", "Deployment", wl, ns, spec={"template": {
            "metadata": {"labels": labels}, "spec": {"serviceAccountName": wl,
                                                     "containers": [{"ports": [{"containerPort": 8080}]}]}}}))
    for app, ns in dest[[schema.DESTINATION_APP, schema.DESTINATION_WORKLOAD_NAMESPACE]].drop_duplicates().itertuples(index=False):
        objs.append(ConfigObject("v1", "Service", app, ns, spec={"selector": {"app": app},
                                                                  "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}))
    return objs


def main() -> None:
    rates = synthetic_rates()
    rates[schema.SOURCE_PRINCIPAL] = ("spiffe://cluster.local/ns/" + rates[schema.SOURCE_WORKLOAD_NAMESPACE].astype(str)
                                      + "/sa/" + rates[schema.SOURCE_WORKLOAD].astype(str))
    plain = np.random.default_rng(3).random(len(rates)) < 0.02  # a few plaintext callers
    csp = rates[schema.CONNECTION_SECURITY_POLICY].astype(str).to_numpy(copy=True)
    csp[plain & (csp == "mutual_tls")] = "none"
    rates[schema.CONNECTION_SECURITY_POLICY] = csp
    live = _mesh(rates)
    n_edges = len(edges_of(rates))
    allow = ConfigObject("security.istio.io/v1", "AuthorizationPolicy", "ns3-only", "ns3", spec={
        "action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": ["ns3", "ns4"]}}]}]})
    strict = ConfigObject("security.istio.io/v1", "PeerAuthentication", "default", "istio-system",
                          spec={"mtls": {"mode": "STRICT"}})
    shift = ConfigObject("networking.istio.io/v1", "VirtualService", "svc3", "ns3", spec={
        "hosts": ["svc3"], "http": [{"route": [{"destination": {"host": "svc3", "subset": "v1"}, "weight": 50},
                                               {"destination": {"host": "svc3", "subset": "v9"}, "weight": 50}]}]})
    base = best_of(lambda: edges_of(rates))
    report(f"whatif read window into edges ({n_edges:,} edges)", base * 1000, "ms")
    for name, obj in (("namespace ALLOW policy", allow), ("mesh-wide STRICT mTLS", strict),
                      ("weight shift to a subset", shift)):
        t = best_of(lambda o=obj: predict(live, [o], rates, 3600, findings=False))
        rep = predict(live, [obj], rates, 3600, findings=False)
        report(f"whatif impact of one {name} (10k workloads, goal < 2000 ms; {len(rep.impacts)} edges hit)",
               t * 1000, "ms", ("reading the window", base * 1000))
    logged(live, rates, base)
    canary(rates, base * 1000)


def logged(live, rates, base: float) -> None:  # noqa: ANN001
    """A path + method policy replayed over the window's access-log rows (500k requests of the 10k mesh)."""
    import pandas as pd

    edges = edges_of(rates)
    rng = np.random.default_rng(5)
    n = 500_000
    pick = rng.integers(0, len(edges), n)
    e = edges.iloc[pick]
    paths = np.array(["/api/v1/items", "/api/v1/items/42?x=1", "/admin/users", "/healthz", "/static/app.js"], object)
    reqs = pd.DataFrame({
        schema.REPORTER: "source", schema.SOURCE_WORKLOAD_NAMESPACE: e["s_ns"].to_numpy(),
        schema.SOURCE_WORKLOAD: e["s_wl"].to_numpy(), schema.SOURCE_PRINCIPAL: e["principal"].to_numpy(),
        schema.DESTINATION_WORKLOAD_NAMESPACE: "unknown", schema.DESTINATION_WORKLOAD: "unknown",
        schema.DESTINATION_SERVICE: e["d_host"].to_numpy(), schema.METHOD: rng.choice(np.array(["GET", "POST", "DELETE"], object), n),
        schema.PATH: rng.choice(paths, n), schema.AUTHORITY: e["d_host"].to_numpy(),
        schema.UPSTREAM_CLUSTER: "outbound|80||" + e["d_host"].to_numpy().astype(object)})
    pol = ConfigObject("security.istio.io/v1", "AuthorizationPolicy", "no-admin-writes", "ns3", spec={
        "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin*"], "notMethods": ["GET"]}}]}]})
    t = best_of(lambda: predict(live, [pol], rates, 3600, findings=False, requests=reqs))
    rep = predict(live, [pol], rates, 3600, findings=False, requests=reqs)
    certain = sum(1 for i in rep.impacts if i.certain)
    report(f"whatif impact of one path/method policy replayed over {n:,} logged requests (10k workloads, goal < 2000 ms; "
           f"{certain} edges decided)", t * 1000, "ms", ("reading the window", base * 1000))



def canary(rates, base_ms: float) -> None:  # noqa: ANN001
    t = best_of(lambda: evaluate(rates, 3600))
    n = len(evaluate(rates, 3600))
    report(f"canary verdicts for every split service ({n:,} candidate versions, goal < 200 ms)", t * 1000, "ms",
           ("reading the window", base_ms))
    # the live loop's refresh: the same verdicts plus which versions serve (newer versions side by side)
    from diagnose.canary.live import finding_source

    snap = type("Snap", (), {"objects": [], "mesh_config": None})()
    clock = [0.0]

    def refresh() -> None:
        clock[0] += 1000.0
        src(1e9 + clock[0])

    src = finding_source(lambda w, e=None: rates, lambda: snap, window_s=3600, clock=lambda: clock[0])
    tl = best_of(refresh)
    report(f"canary live refresh for every split service ({n:,} candidates, side-by-side newcomers tracked)", tl * 1000,
           "ms", ("the verdicts alone", t * 1000))
    # a rollout in three steps: the window cut where the weights moved, each step its own frame (3x the rows)
    steps = [Period(k * 1200.0, (k + 1) * 1200.0, rates) for k in range(3)]
    t3 = best_of(lambda: evaluate_periods(steps))
    report(f"canary verdicts compared step by step over 3 rollout steps ({n:,} candidates, 3 frames)", t3 * 1000, "ms",
           ("one window", t * 1000))


if __name__ == "__main__":
    main()
