"""Changes the replay does not model, and the live edges they could touch: "at risk", never "safe".

The replay judges mTLS, AuthorizationPolicies and VirtualService/DestinationRule routing. A proposal that
changes a Sidecar's egress, a ServiceEntry, a Gateway, an EnvoyFilter or a WasmPlugin used to come back
with no impact at all, which reads as "nothing would break" (exit 0) when the answer is "not known". Each
such changed object now marks the observed edges it governs as at risk (certain=False, broken_rps = the
edge's rate), with the reason naming what is not judged. A Sidecar's egress is read far enough to tell
which hosts it stops importing for the callers it selects; only those edges are marked (what happens to
them depends on the outbound traffic policy: passthrough as plaintext, or 502).
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from mesh.config.model import ConfigObject
from mesh.controlplane.policy import host_matches

NOT_MODELLED = {
    "ServiceEntry": "the replay does not model ServiceEntry resolution or endpoints",
    "Gateway": "which requests a Gateway admits depends on their Host header, which metrics do not carry",
    "EnvoyFilter": "an EnvoyFilter patches Envoy's config in ways the replay does not evaluate",
    "WasmPlugin": "a WasmPlugin runs code the replay does not evaluate",
}


def _changed(before: list[ConfigObject], after: list[ConfigObject]) -> list[tuple[ConfigObject | None, ConfigObject | None]]:
    """(old, new) of every object of these kinds that the proposal adds or changes (None: absent on that side)."""
    kinds = {*NOT_MODELLED, "Sidecar"}
    old = {(o.kind, o.namespace, o.name): o for o in before if o.kind in kinds}
    new = {(o.kind, o.namespace, o.name): o for o in after if o.kind in kinds}
    out = []
    for key in sorted(old.keys() | new.keys(), key=str):
        a, b = old.get(key), new.get(key)
        if a is None or b is None or (a is not b and (a.spec != b.spec or a.labels != b.labels)):
            out.append((a, b))
    return out


def _selected(obj: ConfigObject, root: str, ns: pd.Series, labels_of: Any) -> pd.Series:
    """Rows whose workload (namespace, name) the object selects: its namespace (every namespace from the root
    namespace) and its workloadSelector/selector labels, where the config knows the workload's labels."""
    spec = obj.spec if isinstance(obj.spec, dict) else {}
    sel = spec.get("workloadSelector") or spec.get("selector") or {}
    want = (sel.get("labels") or sel.get("matchLabels") or (  # a Gateway's selector is the labels themselves
        sel if obj.kind == "Gateway" else None)) if isinstance(sel, dict) else None
    # a Gateway's selector picks gateway pods in any namespace; the others act in their own (all from the root)
    anywhere = obj.namespace == root or obj.kind == "Gateway"
    in_ns = pd.Series(True, index=ns.index) if anywhere else ns == obj.namespace
    if not isinstance(want, dict) or not want:
        return in_ns
    hit = labels_of(lambda lab: lab is None or all(lab.get(k) == v for k, v in want.items()))
    return in_ns & hit


def _imports(sidecar: ConfigObject, host: str, svc_ns: str) -> bool | None:
    """Does the Sidecar's egress import `host` (of namespace `svc_ns`)? None: no egress section (all hosts)."""
    egress = sidecar.spec.get("egress") if isinstance(sidecar.spec, dict) else None
    if not isinstance(egress, list) or not egress:
        return None
    for listener in egress:
        for h in (listener.get("hosts") or []) if isinstance(listener, dict) else []:
            if not isinstance(h, str) or "/" not in h:
                continue
            ns, dns = h.split("/", 1)
            ns_ok = ns == "*" or ns == svc_ns or (ns == "." and svc_ns == sidecar.namespace)
            if ns_ok and host_matches(dns, host):
                return True
    return False


def at_risk(edges: pd.DataFrame, before: list[ConfigObject], after: list[ConfigObject], workloads: dict,
            root_namespace: str, ref: Any, impact: Any, kind: str) -> list[Any]:
    """EdgeImpacts (kind `kind`) for the observed edges the proposal's unmodelled changes could touch."""
    changes = _changed(before, after)
    if not changes or edges.empty:
        return []
    out = []
    per_edge = edges.groupby(["s_ns", "s_wl", "d_host", "d_ns"], sort=False, observed=True)["rps"].sum().reset_index()
    labels = [getattr(workloads.get((a, b)), "labels", None) for a, b in zip(per_edge["s_ns"], per_edge["s_wl"])]
    dlabels = [getattr(workloads.get((a, b)), "labels", None)
               for a, b in zip(edges["d_ns"], edges["d_wl"])] if "d_wl" in edges else []

    def src_labels(pred: Any) -> pd.Series:
        return pd.Series([pred(x) for x in labels], index=per_edge.index, dtype=bool)

    for old, new in changes:
        obj = new if new is not None else old
        who = f"{obj.kind} {obj.namespace}/{obj.name}"
        if obj.kind == "Sidecar":
            rows = per_edge[_selected(obj, root_namespace, per_edge["s_ns"], src_labels)]
            for r in rows.itertuples(index=False):
                now = _imports(new, r.d_host, r.d_ns) if new is not None else None
                was = _imports(old, r.d_host, r.d_ns) if old is not None else None
                if now is not False or was is False:
                    continue  # still imported (or no egress section), or already not imported
                mode = str(((new.spec.get("outboundTrafficPolicy") or {}).get("mode") or "")).upper()
                why = ("its outboundTrafficPolicy is REGISTRY_ONLY: Istio answers 502 (BlackHoleCluster)"
                       if mode == "REGISTRY_ONLY" else "under ALLOW_ANY Istio passes it through as plaintext "
                       "without its routes (refused where the destination is STRICT); under REGISTRY_ONLY, 502")
                out.append(impact(kind, f"{r.s_ns}/{r.s_wl}", r.d_host, r.d_host, float(r.rps), float(r.rps),
                                  f"{who} no longer imports {r.d_host} for {r.s_ns}/{r.s_wl}: {why} (the bundled "
                                  "mesh does not enforce Sidecars, so this is not verified here)",
                                  ref(new, "spec/egress"), certain=False))
            continue
        if obj.kind == "ServiceEntry":
            hosts = {str(h) for o in (old, new) if o is not None for h in (o.spec.get("hosts") or [])}
            rows = per_edge[per_edge["d_host"].map(lambda h: any(host_matches(p, h) for p in hosts))]
        else:  # Gateway, EnvoyFilter, WasmPlugin: the traffic through the workloads they select
            rows = per_edge[_selected(obj, root_namespace, per_edge["s_ns"], src_labels)]
            if obj.kind != "Gateway" and dlabels:
                dst = edges[_selected(obj, root_namespace, edges["d_ns"], lambda p: pd.Series(
                    [p(x) for x in dlabels], index=edges.index, dtype=bool))]
                keys = set(zip(dst["s_ns"], dst["s_wl"], dst["d_host"]))
                into = per_edge[[k in keys for k in zip(per_edge["s_ns"], per_edge["s_wl"], per_edge["d_host"])]]
                rows = pd.concat([rows, into]).drop_duplicates(subset=["s_ns", "s_wl", "d_host"])
        op = "deleted" if new is None else "created" if old is None else "changed"
        for r in rows.itertuples(index=False):
            out.append(impact(kind, f"{r.s_ns}/{r.s_wl}", r.d_host, r.d_host, float(r.rps), float(r.rps),
                              f"not judged: {who} is {op} and governs this edge; {NOT_MODELLED[obj.kind]}",
                              ref(obj), certain=False))
    return out
