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


# -- ASMCircuitBreaker: error-percent breaking with a custom status -------------------------------------
ADMISSION = "envoy.filters.http.admission_control"
ADMISSION_TYPE = "type.googleapis.com/envoy.extensions.filters.http.admission_control.v3.AdmissionControl"
LOCAL_REPLY_DEFAULT = 503  # what the admission control filter answers before the mapper rewrites it


def outbound_breakers(ctx: ProxyContext) -> list[Any]:
    """Client-side breakers (`applyToTraffic: sidecar_outbound`) selecting this workload."""
    from mesh.config.asm import CIRCUIT_BREAKER
    w = ctx.workload
    return sorted((o for o in ctx.index.of_kind(CIRCUIT_BREAKER)
                   if o.namespace == w.namespace and _selects(o, w.labels)
                   and o.spec.get("applyToTraffic") == "sidecar_outbound"), key=lambda o: o.name)


def _breaker_config(obj: Any) -> dict[str, Any] | None:
    configs = obj.spec.get("configs") if isinstance(obj.spec.get("configs"), list) else []
    return next((c["breaker_config"] for c in configs if isinstance(c, dict) and isinstance(c.get("breaker_config"), dict)
                 and isinstance((c["breaker_config"].get("error_percent") or {}).get("value"), (int, float))), None)


def breaker_filters(ctx: ProxyContext) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(HTTP filters, HCM fields) for this workload's client-side ASMCircuitBreakers.

    Envoy has no filter that opens on an error share and answers a chosen code, so the
    equivalent is two of its own parts: the admission control filter rejects outbound
    requests while the success rate over `window_size` is below 100 - `error_percent`
    (5xx count as failures, as in ASM), and a local-reply mapper turns its 503 into
    `custom_response.status_code`. A first mapper leaves every local reply that carries a
    response flag (UO, UH, NC, ...) untouched, so only the breaker's own rejects change code.
    """
    filters: list[dict[str, Any]] = []
    mappers: list[dict[str, Any]] = []
    for obj in outbound_breakers(ctx):
        bc = _breaker_config(obj)
        if bc is None:
            ctx.warnings.append(f"{obj.ref}: no error_percent breaker_config; not applied")
            continue
        window = duration_s(bc.get("window_size")) or 10.0
        min_rps = float(bc.get("min_request_amount") or 0) / window
        threshold = max(0.0, min(100.0, 100.0 - float(bc["error_percent"]["value"])))
        filters.append({"name": ADMISSION, "typed_config": {
            "@type": ADMISSION_TYPE,
            "enabled": {"default_value": True, "runtime_key": f"asm_cb_{obj.name}_enabled"},
            "success_criteria": {"http_criteria": {"http_success_status": [{"start": 100, "end": 500}]}},
            "sampling_window": f"{window:g}s",
            "aggression": {"default_value": 1.0, "runtime_key": f"asm_cb_{obj.name}_aggression"},
            "sr_threshold": {"default_value": {"value": threshold}, "runtime_key": f"asm_cb_{obj.name}_sr"},
            "rps_threshold": {"default_value": int(min_rps), "runtime_key": f"asm_cb_{obj.name}_rps"},
            "max_rejection_probability": {"default_value": {"value": 95.0}, "runtime_key": f"asm_cb_{obj.name}_max"},
        }})
        custom = bc.get("custom_response") if isinstance(bc.get("custom_response"), dict) else {}
        code = custom.get("status_code")
        if isinstance(code, int) and not isinstance(code, bool) and code != LOCAL_REPLY_DEFAULT:
            mapper: dict[str, Any] = {"filter": {"status_code_filter": {"comparison": {
                "op": "EQ", "value": {"default_value": LOCAL_REPLY_DEFAULT, "runtime_key": f"asm_cb_{obj.name}_code"}}}},
                "status_code": code}
            if isinstance(custom.get("body"), str):
                mapper["body"] = {"inline_string": custom["body"]}
            headers = custom.get("header_to_add")
            if isinstance(headers, dict):
                mapper["headers_to_add"] = [{"header": {"key": str(k), "value": str(v)},
                                             "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"} for k, v in headers.items()]
            mappers.append(mapper)
    extra = {"local_reply_config": {"mappers": [{"filter": {"response_flag_filter": {}}}, *mappers[:1]]}} if mappers else {}
    return filters, extra
