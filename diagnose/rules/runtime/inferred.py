"""Causes inferred from metrics + config when no access log says more (a cluster read through Prometheus).

Istio's metrics carry the response flag but not `response_code_details`, so on a cluster without
per-request logs the rules that need details (MS3001 mTLS mismatch, MS3012 RBAC) cannot fire.
The live config still says what the flag most likely means on that edge:

- `UC`/`UF`/`URX` toward a destination that requires mTLS (STRICT) while the client's
  DestinationRule disables TLS -> the mTLS mismatch (MS3041), blaming that DestinationRule;
- `403` reported by the destination, where an AuthorizationPolicy selects its workload -> that
  policy (MS3042).

Each finding says it is inferred and what evidence would confirm it; `NR`/`NC`/`UH` need no
inference (their flags name the cause; correlation names the route or subset object). Every
runtime finding carries `evidence.evidence_source` ("seen in access logs" or "inferred from
metrics"), stamped by the engine.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diagnose.catalog import make
from diagnose.findings import Finding
from diagnose.rules.runtime.evidence import hurt_by_service
from diagnose.rules.runtime.keepalive import config_mtls_conflict
from diagnose.rules.runtime.traffic import CODE, DST, DST_WL, FLAGS, SIDE, RuntimeContext, fqdn_parts, has_flag

INFERRED = "inferred from metrics"
SEEN = "seen in access logs"
CONFIRM_MTLS = ("access logs would show upstream_reset_before_response_started{connection_termination} on the client "
                "and a TLS error (filter_chain_not_found) on the server's listener")
CONFIRM_RBAC = "access logs would show response_code_details rbac_access_denied_matched_policy[...] on the server"


def metrics_only(ctx: RuntimeContext) -> bool:
    """True when the window's evidence is Istio's metrics alone (no per-request access logs)."""
    return ctx.requests is None or not len(ctx.requests)


def evidence_source(ctx: RuntimeContext) -> str:
    return INFERRED if metrics_only(ctx) else SEEN


@dataclass(frozen=True)
class InferredMTLSMismatch:
    name: str = "inferred.MTLSMismatch"
    description: str = "metrics only: UC/UF toward a STRICT server whose clients' DestinationRule disables TLS"
    codes: tuple[str, ...] = ("MS3041",)

    def analyze(self, ctx: RuntimeContext) -> list[Finding]:
        c = ctx.calls
        if c.empty or not metrics_only(ctx) or ctx.snapshot is None:
            return []
        failing = has_flag(c[FLAGS], "UC") | has_flag(c[FLAGS], "UF") | has_flag(c[FLAGS], "URX")
        out = []
        for hurt in hurt_by_service(ctx, c[(c[SIDE] == "source") & failing]):
            conflict = config_mtls_conflict(ctx.snapshot, hurt.destination)
            if not conflict:
                continue
            flag = next((f for f in hurt.flags if f in ("UC", "UF", "URX")), "UC")
            f = make("MS3041", resource=hurt.service_ref(), **hurt.args(), flag=flag, confirm=CONFIRM_MTLS)
            f.evidence = hurt.evidence(rule=self.name, config_conflict=conflict, confirm_with=CONFIRM_MTLS)
            f.impact = hurt.impact()
            out.append(f)
        return out


def _selecting_policies(snapshot: Any, workload: str, namespace: str) -> list[Any]:
    """AuthorizationPolicies that apply to `workload` (selector match, namespace-wide, or mesh-wide), DENY first."""
    root = getattr(snapshot.mesh_config, "root_namespace", "istio-system")
    out = []
    for ap in snapshot.of_kind("AuthorizationPolicy"):
        if ap.namespace not in (namespace, root):
            continue
        selector = ((ap.spec.get("selector") or {}).get("matchLabels")) or {}
        if selector and workload not in {w.name for w in snapshot.matching_workloads(ap.namespace, selector,
                                                                                       any_namespace=ap.namespace == root)}:
            continue
        out.append(ap)
    order = {"DENY": 0, "CUSTOM": 1, "ALLOW": 2, "AUDIT": 3}
    return sorted(out, key=lambda ap: (order.get(str(ap.spec.get("action", "ALLOW")), 2), ap.namespace == root))


@dataclass(frozen=True)
class InferredRBACDenied:
    name: str = "inferred.RBACDenied"
    description: str = "metrics only: 403 reported by a destination that an AuthorizationPolicy selects"
    codes: tuple[str, ...] = ("MS3042",)

    def analyze(self, ctx: RuntimeContext) -> list[Finding]:
        c = ctx.calls
        if c.empty or not metrics_only(ctx) or ctx.snapshot is None:
            return []
        rows = c[(c[SIDE] == "destination") & (c[CODE] == 403)]
        out = []
        for hurt in hurt_by_service(ctx, rows):
            _, ns = fqdn_parts(hurt.destination)
            workloads = [w for w in rows[rows[DST] == hurt.destination][DST_WL].unique() if w and w != "unknown"]
            policies = []
            for wl in workloads or ["unknown"]:
                policies += [ap for ap in _selecting_policies(ctx.snapshot, wl, ns) if ap not in policies]
            if not policies:
                continue
            label = ", ".join(f"AuthorizationPolicy {ap.namespace}/{ap.name} ({ap.spec.get('action', 'ALLOW')})"
                              for ap in policies[:3])
            client = c[(c[SIDE] == "source") & (c[CODE] == 403) & (c[DST] == hurt.destination)]
            callers = hurt_by_service(ctx, client)
            args = hurt.args()
            if callers:
                args["source"] = callers[0].sources
            f = make("MS3042", resource=hurt.service_ref(), **args, policy=label, confirm=CONFIRM_RBAC)
            f.evidence = hurt.evidence(rule=self.name, confirm_with=CONFIRM_RBAC,
                                       policies=[{"namespace": ap.namespace, "name": ap.name, "rule": 0,
                                                  "action": ap.spec.get("action", "ALLOW")} for ap in policies],
                                       client_edges=callers[0].edges if callers else [])
            f.impact = hurt.impact()
            out.append(f)
        return out


RULES = [InferredMTLSMismatch(), InferredRBACDenied()]
