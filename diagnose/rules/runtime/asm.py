"""ASM's rate limiters and circuit breakers at runtime: their answers attributed to the object that gave them.

Without this, an ASMLocalRateLimiter's 429s and an ASMCircuitBreaker's custom
status (e.g. 499) show up as an unexplained 4xx on the service. A limiter's
reject is a local reply: Envoy logs the RL flag with `local_rate_limited`
(global: `request_rate_limited`) on the proxy that limited. A breaker's reject
is a local reply with the configured status, never `via_upstream`. Each is
matched to the ASM objects whose workloadSelector picks the proxy that answered
(the service's pods for inbound/gateway traffic, the callers for
`applyToTraffic: sidecar_outbound`), and the finding names the object, its
limits and the traffic it cut.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from diagnose.catalog import make
from diagnose.context import resource_ref
from diagnose.findings import Finding
from diagnose.rules.runtime.evidence import Hurt, hurt_by_service
from diagnose.rules.runtime.traffic import CODE, DETAILS, FLAGS, SIDE, RuntimeContext
from mesh.config import ConfigObject
from mesh.config import asm as model

OUTBOUND = "sidecar_outbound"


def _as_dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _selector(obj: ConfigObject) -> dict[str, str]:
    labels = _as_dict(_as_dict(obj.spec.get("workloadSelector")).get("labels"))
    return {str(k): str(v) for k, v in labels.items()}


def _outbound(obj: ConfigObject) -> bool:
    return obj.spec.get("applyToTraffic") == OUTBOUND


def _selects_service(snapshot: Any, obj: ConfigObject, fqdn: str) -> bool:
    """Whether the object's selector picks pods of the service (the proxy that answered inbound)."""
    svc = snapshot.service_by_fqdn(fqdn)
    labels = _selector(obj)
    if svc is None or not labels or svc.namespace != obj.namespace:
        return False
    sel = _as_dict(svc.spec.get("selector"))
    pods = {(w.kind, w.name) for w in snapshot.matching_workloads(svc.namespace, {str(k): str(v) for k, v in sel.items()})}
    return bool(sel) and bool(pods & {(w.kind, w.name) for w in snapshot.matching_workloads(obj.namespace, labels)})


def _selects_caller(snapshot: Any, obj: ConfigObject, sources: list[str]) -> bool:
    """Whether an outbound object's selector picks one of the calling workloads (by workload name or app label)."""
    labels = _selector(obj)
    if not labels:
        return False
    picked = snapshot.matching_workloads(obj.namespace, labels)
    return any(w.name in sources or w.labels.get("app") in sources for w in picked)


def _targets(obj: ConfigObject, fqdn: str) -> bool:
    """An object without target_services acts on all traffic; with them, only on the named services."""
    names = [_as_dict(t) for cfg in _as_list(obj.spec.get("configs")) for t in _as_list(_as_dict(cfg).get("target_services"))]
    if not names:
        return True
    short, _, rest = fqdn.partition(".")
    ns = rest.split(".")[0] if rest else None
    return any(t.get("name") == short and (t.get("namespace") or obj.namespace) == ns for t in names)


def _owners(ctx: RuntimeContext, kind: str, hurt: Hurt) -> list[ConfigObject]:
    snap = ctx.snapshot
    if snap is None:
        return []
    sources = [str(e.get("source_workload") or e.get("source") or "") for e in hurt.edges]
    out = []
    for obj in snap.of_kind(kind):
        if not _targets(obj, hurt.destination):
            continue
        if (_outbound(obj) and _selects_caller(snap, obj, sources)) or \
                (not _outbound(obj) and _selects_service(snap, obj, hurt.destination)):
            out.append(obj)
    return out


def _local_limit(obj: ConfigObject) -> str:
    parts = []
    for cfg in _as_list(obj.spec.get("configs")):
        limit = _as_dict(_as_dict(cfg).get("limit"))
        every = model.duration_s(limit.get("fill_interval"))
        if limit.get("quota") is not None and every:
            parts.append(f"quota {limit['quota']} per {every:g}s per proxy")
    return "; ".join(parts) or "limit not readable"


def _global_limit(obj: ConfigObject) -> str:
    parts = []
    for cfg in _as_list(obj.spec.get("configs")):
        limit = _as_dict(_as_dict(cfg).get("limit"))
        if limit.get("quota") is not None:
            parts.append(f"quota {limit['quota']} per {str(limit.get('unit', '?')).lower()} across the mesh")
    return "; ".join(parts) or "limit not readable"


def limiter_statuses(snapshot: Any) -> set[int]:
    """Every status a local limiter answers with (429 unless `limit.status` says otherwise)."""
    out = {model.DEFAULT_LIMIT_STATUS}
    if snapshot is None:
        return out
    for obj in snapshot.of_kind(model.LOCAL_RATE_LIMITER):
        for cfg in _as_list(obj.spec.get("configs")):
            status = _as_dict(_as_dict(cfg).get("limit")).get("status")
            if isinstance(status, int) and not isinstance(status, bool):
                out.add(status)
    return out


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%"


def _per_service(ctx: RuntimeContext, rows: pd.DataFrame) -> list[Hurt]:
    """Hurt per service, from the side that answered first (server then client), each service once."""
    out, seen = [], set()
    for side in ("destination", "source"):
        for hurt in hurt_by_service(ctx, rows[rows[SIDE] == side]):
            if hurt.destination not in seen:
                seen.add(hurt.destination)
                out.append(hurt)
    return out


@dataclass(frozen=True)
class RateLimited:
    name: str = "asm.RateLimited"
    description: str = "429s (or the configured status) from Envoy's rate limiter, attributed to the ASM limiter"
    codes: tuple[str, ...] = ("MS6020",)

    def analyze(self, ctx: RuntimeContext) -> list[Finding]:
        c = ctx.calls
        if c.empty or ctx.snapshot is None:
            return []
        limited = c[FLAGS].str.contains("RL", regex=False) | c[DETAILS].str.contains("rate_limited", regex=False)
        rows = c[c[CODE].isin(sorted(limiter_statuses(ctx.snapshot))) & limited]
        out = []
        for hurt in _per_service(ctx, rows):
            glob = hurt.details and all("request_rate_limited" in d for d in hurt.details)
            kind = model.GLOBAL_RATE_LIMITER if glob else model.LOCAL_RATE_LIMITER
            owners = _owners(ctx, kind, hurt)
            if not owners:
                continue  # Envoy limited, but no ASM object explains it: the generic rules report it
            describe = _global_limit if glob else _local_limit
            limiter = ", ".join(o.ref for o in owners)
            limit = " | ".join(describe(o) for o in owners)
            status = ", ".join(sorted(hurt.codes))
            # the finding is about the limiter (file:line), its traffic about the service it cut
            f = make("MS6020", resource=resource_ref(owners[0]),
                     related=[*(resource_ref(o) for o in owners[1:]), hurt.service_ref()],
                     **hurt.args(), workload=hurt.destination, share=_pct(hurt.share), status=status, limiter=limiter,
                     limit=limit)
            f.evidence = hurt.evidence(rule=self.name, objects=[o.ref for o in owners], limits=limit)
            f.impact = hurt.impact()
            out.append(f)
        return out


def breaker_status(obj: ConfigObject) -> set[int]:
    out = set()
    for cfg in _as_list(obj.spec.get("configs")):
        code = _as_dict(_as_dict(_as_dict(cfg).get("breaker_config")).get("custom_response")).get("status_code")
        if isinstance(code, int) and not isinstance(code, bool):
            out.add(code)
    return out


def _thresholds(obj: ConfigObject) -> tuple[str, str]:
    trips, opens = [], []
    for cfg in _as_list(obj.spec.get("configs")):
        bc = _as_dict(_as_dict(cfg).get("breaker_config"))
        window = bc.get("window_size", f"{model.DEFAULT_WINDOW_S:g}s")
        if isinstance(_as_dict(bc.get("error_percent")).get("value"), (int, float)):
            trips.append(f"errors over {bc['error_percent']['value']}% in {window}"
                         f" (min {bc.get('min_request_amount', 0)} requests)")
        if bc.get("max_slow_requests") is not None:
            trips.append(f"more than {bc['max_slow_requests']} requests slower than {bc.get('slow_request_rt')} in {window}")
        opens.append(str(bc.get("break_duration", f"{model.DEFAULT_BREAK_S:g}s")))
    return "; ".join(trips) or "thresholds not readable", ", ".join(dict.fromkeys(opens))


@dataclass(frozen=True)
class CircuitOpen:
    name: str = "asm.CircuitOpen"
    description: str = "Local replies with an ASMCircuitBreaker's custom status, attributed to that breaker"
    codes: tuple[str, ...] = ("MS6021",)

    def analyze(self, ctx: RuntimeContext) -> list[Finding]:
        c = ctx.calls
        snap = ctx.snapshot
        if c.empty or snap is None:
            return []
        breakers = list(snap.of_kind(model.CIRCUIT_BREAKER))
        statuses = sorted({code for b in breakers for code in breaker_status(b)})
        if not statuses:
            return []
        rows = c[c[CODE].isin(statuses) & (c[DETAILS] != "via_upstream")]
        out = []
        for hurt in _per_service(ctx, rows):
            owners = [o for o in _owners(ctx, model.CIRCUIT_BREAKER, hurt)
                      if {str(x) for x in breaker_status(o)} & set(hurt.codes)]
            if not owners:
                continue
            trips, opens = zip(*(_thresholds(o) for o in owners))
            f = make("MS6021", resource=resource_ref(owners[0]),
                     related=[*(resource_ref(o) for o in owners[1:]), hurt.service_ref()], **hurt.args(),
                     workload=hurt.destination, share=_pct(hurt.share), status=", ".join(sorted(hurt.codes)),
                     breaker=", ".join(o.ref for o in owners), thresholds=" | ".join(trips),
                     break_duration=", ".join(opens))
            f.evidence = hurt.evidence(rule=self.name, objects=[o.ref for o in owners], thresholds=list(trips))
            f.impact = hurt.impact()
            out.append(f)
        return out


RULES = [RateLimited(), CircuitOpen()]
