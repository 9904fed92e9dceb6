"""ASM's ASMLocalRateLimiter in the bundled control plane: Envoy's own local rate limit filter.

ASM programs the same Envoy filter (`envoy.filters.http.local_ratelimit`, a token
bucket per proxy: `quota` tokens every `fill_interval`), so the bundled mesh's
sidecars answer exactly as an ASM sidecar does: 429, flag RL, details
`local_rate_limited`. A limiter applies to the inbound side of the workloads its
workloadSelector picks in its namespace (ASM's default direction); per-route
matches (`match.vhost.route`) are not modelled here: the first config's bucket
covers the listener, which is what a single-route service sees.
"""
from __future__ import annotations

from typing import Any

from mesh.config.asm import LOCAL_RATE_LIMITER, duration_s
from mesh.controlplane.context import ProxyContext

FILTER = "envoy.filters.http.local_ratelimit"
TYPE = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
ALWAYS = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}


def _selects(obj: Any, labels: dict[str, str]) -> bool:
    sel = ((obj.spec.get("workloadSelector") or {}).get("labels") or {}) if isinstance(obj.spec, dict) else {}
    return bool(sel) and isinstance(sel, dict) and all(labels.get(str(k)) == str(v) for k, v in sel.items())


def inbound_limiters(ctx: ProxyContext) -> list[Any]:
    w = ctx.workload
    return sorted((o for o in ctx.index.of_kind(LOCAL_RATE_LIMITER)
                   if o.namespace == w.namespace and _selects(o, w.labels) and not o.spec.get("isGateway")
                   and o.spec.get("applyToTraffic", "sidecar_inbound") == "sidecar_inbound"),
                  key=lambda o: o.name)


def local_ratelimit_filters(ctx: ProxyContext) -> list[dict[str, Any]]:
    """One local rate limit filter per ASMLocalRateLimiter selecting this workload (bad limits are skipped
    with a warning: the analyzer reports them as MS6002)."""
    out = []
    for obj in inbound_limiters(ctx):
        configs = obj.spec.get("configs") if isinstance(obj.spec.get("configs"), list) else []
        limit = next((c.get("limit") for c in configs if isinstance(c, dict) and isinstance(c.get("limit"), dict)), None)
        quota = limit.get("quota") if limit else None
        every = duration_s(limit.get("fill_interval")) if limit else None
        if not isinstance(quota, int) or isinstance(quota, bool) or quota < 1 or not every:
            ctx.warnings.append(f"{obj.ref}: no usable limit (quota, fill_interval); not applied")
            continue
        cfg: dict[str, Any] = {
            "@type": TYPE, "stat_prefix": f"asm_local_rate_limit_{obj.name}",
            "token_bucket": {"max_tokens": quota, "tokens_per_fill": quota,
                             "fill_interval": f"{max(every, 0.05):.3f}s"},
            "filter_enabled": {**ALWAYS, "runtime_key": "asm_local_rate_limit_enabled"},
            "filter_enforced": {**ALWAYS, "runtime_key": "asm_local_rate_limit_enforced"},
            "local_rate_limit_per_downstream_connection": bool(limit.get("per_downstream_connection", False)),
        }
        status = limit.get("status")
        if isinstance(status, int) and not isinstance(status, bool):
            cfg["status"] = {"code": status}
        headers = limit.get("response_header_to_add")
        if isinstance(headers, dict):
            cfg["response_headers_to_add"] = [{"header": {"key": str(k), "value": str(v)}, "append_action":
                                               "OVERWRITE_IF_EXISTS_OR_ADD"} for k, v in headers.items()]
        out.append({"name": FILTER, "typed_config": cfg})
    return out
