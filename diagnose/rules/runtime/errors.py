"""Plain error answers per destination that no response flag explains: 5xx, and the 4xx a service answers to
requests it does not serve.

Rows carrying a response flag already have their own finding (response_flags),
so these rules count only flag-less answers. 5xx are judged per caller side like
Kiali's health defaults (degraded above `degraded_pct`, failing from `failure_pct`).
4xx are the caller's own business in small numbers (a missing product); a large
share of one service's answers from inside the mesh is a route or client that
asks for the wrong thing (a rewrite to a path the service does not serve).
"""
from __future__ import annotations

from dataclasses import dataclass

from diagnose.findings import Finding
from diagnose.catalog import make
from diagnose.rules.runtime.evidence import hurt_by_service
from diagnose.rules.runtime.gateways import is_gateway
from diagnose.rules.runtime.traffic import CODE, DETAILS, FLAGS, SIDE, SRC, SRC_NS, RuntimeContext


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
        # a route's own answer (directResponse) is not the app's: MS3017
        plain = c[(c[CODE] >= 500) & (c[CODE] <= 599) & (c[FLAGS] == "-") & (c[DETAILS] != DIRECT_RESPONSE)]
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


# 4xx that mean something else than "not served": authentication and authorization (their own rules: MS3012, the
# client side's 403 mirrors them), proxy authentication, request timeout, too many requests (rate limits), and
# the client closing the request (499)
NOT_SERVED_EXCLUDED = (401, 403, 407, 408, 429, 499)


@dataclass(frozen=True)
class UpstreamClientErrors:
    min_share: float = 0.2  # at least this share of the service's answers (to callers in the mesh)
    min_count: int = 5
    name: str = "errors.UpstreamClientErrors"
    description: str = "4xx the destination itself answers (not auth, not rate limits) to a large share of mesh callers"
    codes: tuple[str, ...] = ("MS3016",)

    def analyze(self, ctx: RuntimeContext) -> list[Finding]:
        c = ctx.calls
        if c.empty:
            return []
        # the client side's view (what the caller got); requests from outside through a gateway are strangers'
        # paths (scanners, typos): a gateway's callers are not judged here (a gateway by what it is, not its name)
        rows = c[(c[SIDE] == "source") & (c[CODE] >= 400) & (c[CODE] <= 499) & ~c[CODE].isin(NOT_SERVED_EXCLUDED)
                 & (c[FLAGS] == "-") & (c[DETAILS] == "via_upstream")]
        rows = rows[~is_gateway(ctx.snapshot, rows[SRC], rows[SRC_NS])]
        out = []
        for hurt in hurt_by_service(ctx, rows, self.min_count):
            if hurt.share < self.min_share:
                continue
            codes = "/".join(sorted(hurt.codes, key=lambda k: -float(hurt.codes[k])))
            f = make("MS3016", resource=hurt.service_ref(), **hurt.args(), codes=codes, pct=100.0 * hurt.share)
            f.evidence = hurt.evidence(rule=self.name)
            f.impact = hurt.impact()
            out.append(f)
        return out


# Envoy's response_code_details when the matched route answered itself (no upstream was asked)
DIRECT_RESPONSE = "direct_response"


@dataclass(frozen=True)
class RouteDirectResponse:
    """Errors a route answers itself (a VirtualService `directResponse`): the request never reached the service,
    so the service is not failing and no flag is set; the route is the cause. 5xx hurt whoever gets them (from
    `degraded_pct`); 4xx only count as harm when they are a large share of what mesh callers get (a route that
    blocks a path on purpose answers strangers through a gateway, or a few requests)."""

    degraded_pct: float = 1.0
    client_error_share: float = 0.2
    min_count: int = 3
    name: str = "errors.RouteDirectResponse"
    description: str = "error answers the matched route gives itself (directResponse), before any upstream"
    codes: tuple[str, ...] = ("MS3017",)

    def analyze(self, ctx: RuntimeContext) -> list[Finding]:
        c = ctx.calls
        if c.empty:
            return []
        rows = c[(c[SIDE] == "source") & (c[CODE] >= 400) & (c[CODE] <= 599) & (c[DETAILS] == DIRECT_RESPONSE)]
        if rows.empty:
            return []
        client = (rows[CODE] < 500) & ~rows[CODE].isin(NOT_SERVED_EXCLUDED)
        client &= ~is_gateway(ctx.snapshot, rows[SRC], rows[SRC_NS])
        out = []
        for part, floor in ((rows[rows[CODE] >= 500], self.degraded_pct / 100.0),
                            (rows[client], self.client_error_share)):
            for hurt in hurt_by_service(ctx, part, self.min_count):
                if hurt.share < floor or any(f.evidence.get("edge_key") == hurt.destination for f in out):
                    continue
                codes = "/".join(sorted(hurt.codes, key=lambda k: -float(hurt.codes[k])))
                f = make("MS3017", resource=hurt.service_ref(), **hurt.args(), codes=codes, pct=100.0 * hurt.share)
                f.evidence = hurt.evidence(rule=self.name)
                f.impact = hurt.impact()
                out.append(f)
        return out


RULES = [EdgeErrorRate(), UpstreamClientErrors(), RouteDirectResponse()]
