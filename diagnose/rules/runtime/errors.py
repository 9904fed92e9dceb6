"""Plain 5xx error rate per destination: server errors that no response flag explains.

Rows carrying a response flag already have their own finding (response_flags),
so this rule counts only flag-less 5xx answers, judged per caller side like
Kiali's health defaults (degraded above `degraded_pct`, failing from `failure_pct`).
"""
from __future__ import annotations

from dataclasses import dataclass

from diagnose.findings import Finding
from diagnose.catalog import make
from diagnose.rules.runtime.evidence import hurt_by_service
from diagnose.rules.runtime.traffic import CODE, FLAGS, SIDE, RuntimeContext


@dataclass(frozen=True)
class EdgeErrorRate:
    degraded_pct: float = 1.0  # warning at or above this share of 5xx
    failure_pct: float = 10.0  # error at or above
    min_errors: int = 3  # fewer errors than this are noise
    name: str = "errors.EdgeErrorRate"
    description: str = "5xx answers without a response flag above the degraded share of a service's traffic"
    codes: tuple[str, ...] = ("MS3013",)

    def analyze(self, ctx: RuntimeContext) -> list[Finding]:
        c = ctx.calls
        if c.empty:
            return []
        # Client-observed when a client side exists; server-only traffic (no client sidecar) is judged server side.
        plain = c[(c[CODE] >= 500) & (c[CODE] <= 599) & (c[FLAGS] == "-")]
        out = []
        seen: set[str] = set()
        for side in ("source", "destination"):
            for hurt in hurt_by_service(ctx, plain[plain[SIDE] == side], self.min_errors):
                if hurt.destination in seen:
                    continue
                seen.add(hurt.destination)
                pct = 100.0 * hurt.share
                if pct < self.degraded_pct:
                    continue
                f = make("MS3013", resource=hurt.service_ref(), **hurt.args(), error_pct=pct)
                f.severity = "error" if pct >= self.failure_pct else "warning"
                f.evidence = hurt.evidence(rule=self.name, error_pct=round(pct, 2))
                f.impact = hurt.impact()
                out.append(f)
        return out


RULES = [EdgeErrorRate()]
