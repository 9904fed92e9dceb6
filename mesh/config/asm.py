"""Field models of Alibaba Cloud Service Mesh's own kinds (API group ``istio.alibabacloud.com``).

Written from ASM's public CRD references (ASMLocalRateLimiter, ASMGlobalRateLimiter,
ASMCircuitBreaker, ServiceLevelObjective). ASM's objects live in the ASM instance's
managed control plane, so a mistake there is only seen by reading them: `problems`
returns every field ASM would reject or silently ignore as (YAML path, message), and
the rule module (diagnose.rules.config.asm) turns them into findings with file:line.
Unknown fields pass: ASM adds fields per release, and a newer object must still load.
"""
from __future__ import annotations

import re
from typing import Any

from mesh.config.kinds import ASM_GROUP, group_of

#: API versions ASM serves: v1 since ASM 1.15.3.105, v1beta1 before (both still accepted).
KNOWN_VERSIONS = ("v1", "v1beta1")
#: Type names (see mesh.config.kinds.type_name) of ASM's kinds.
SLO = "ASMServiceLevelObjective"
CIRCUIT_BREAKER = "ASMCircuitBreaker"
LOCAL_RATE_LIMITER = "ASMLocalRateLimiter"
GLOBAL_RATE_LIMITER = "ASMGlobalRateLimiter"
KINDS = (SLO, CIRCUIT_BREAKER, LOCAL_RATE_LIMITER, GLOBAL_RATE_LIMITER)
SELECTOR_KINDS = (CIRCUIT_BREAKER, LOCAL_RATE_LIMITER, GLOBAL_RATE_LIMITER)

SLO_PERIODS = ("30d", "28d", "14d", "7d")
SLI_PLUGINS = ("availability", "latency")
TRAFFIC = ("sidecar_inbound", "sidecar_outbound", "gateway", "waypoint")
GLOBAL_UNITS = ("SECOND", "MINUTE", "HOUR", "DAY")
#: The status a local rate limiter answers with when `limit.status` is not set.
DEFAULT_LIMIT_STATUS = 429
#: ASM's circuit breaker defaults (window 10 s, at most 12 s; open 30 s).
DEFAULT_WINDOW_S, MAX_WINDOW_S, DEFAULT_BREAK_S = 10.0, 12.0, 30.0

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def is_asm(api_version: str) -> bool:
    return group_of(api_version) == ASM_GROUP


def version_of(api_version: str) -> str:
    return api_version.rsplit("/", 1)[-1] if "/" in api_version else ""


def duration_s(value: Any) -> float | None:
    """Seconds of a protobuf Duration as ASM takes it (`10s`, `0.1s`, `{seconds: 1, nanos: 0}`), else None."""
    if isinstance(value, str):
        m = _DURATION.match(value.strip())
        return float(m.group(1)) * _UNIT_S[m.group(2)] if m else None
    if isinstance(value, dict) and set(value) <= {"seconds", "nanos"} and value:
        s, n = value.get("seconds", 0), value.get("nanos", 0)
        if _is_int(s) and _is_int(n):
            return float(s) + float(n) / 1e9
    return None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _word(v: Any) -> str:
    if v is None:
        return "null"
    return {bool: "true/false", str: "a string", int: "a number", float: "a number", dict: "a mapping",
            list: "a list"}.get(type(v), type(v).__name__)


class _Checker:
    """Collects (path, message) while walking one spec."""

    def __init__(self) -> None:
        self.out: list[tuple[str, str]] = []

    def bad(self, path: str, message: str) -> None:
        self.out.append((path, message))

    def mapping(self, value: Any, path: str, required: bool = False) -> dict[str, Any]:
        if value is None:
            if required:
                self.bad(path, "is required")
            return {}
        if not isinstance(value, dict):
            self.bad(path, f"must be a mapping, got {_word(value)}")
            return {}
        return value

    def seq(self, value: Any, path: str, required: bool = False) -> list[Any]:
        if value is None or value == []:
            if required:
                self.bad(path, "is required (a non-empty list)")
            return []
        if not isinstance(value, list):
            self.bad(path, f"must be a list, got {_word(value)}")
            return []
        return value

    def string(self, value: Any, path: str, required: bool = False, choices: tuple[str, ...] = ()) -> str | None:
        if value is None:
            if required:
                self.bad(path, "is required")
            return None
        if not isinstance(value, str) or (required and not value):
            self.bad(path, f"must be a string, got {_word(value)}")
            return None
        if choices and value not in choices:
            self.bad(path, f"is {value!r}; must be one of {', '.join(choices)}")
            return None
        return value

    def boolean(self, value: Any, path: str) -> None:
        if value is not None and not isinstance(value, bool):
            self.bad(path, f"must be true or false, got {_word(value)}")

    def integer(self, value: Any, path: str, low: int | None = None, high: int | None = None,
                required: bool = False) -> int | None:
        if value is None:
            if required:
                self.bad(path, "is required")
            return None
        if not _is_int(value):
            self.bad(path, f"must be a whole number, got {_word(value)} {value!r}"[:120])
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            rng = f"{low}..{high}" if high is not None else f">= {low}"
            self.bad(path, f"is {value}; must be {rng}")
            return None
        return value

    def duration(self, value: Any, path: str, required: bool = False, maximum: float | None = None) -> float | None:
        if value is None:
            if required:
                self.bad(path, "is required")
            return None
        s = duration_s(value)
        if s is None:
            self.bad(path, f"is {value!r}; must be a duration like 1s, 0.5s or {{seconds: 1}}")
            return None
        if s <= 0:
            self.bad(path, "must be longer than zero")
        elif maximum is not None and s > maximum:
            self.bad(path, f"is {value}; ASM allows at most {maximum:g}s")
        return s

    def string_map(self, value: Any, path: str, required: bool = False) -> dict[str, str]:
        m = self.mapping(value, path, required)
        for k, v in m.items():
            if not isinstance(v, str):
                self.bad(f"{path}/{k}", f"must be a string, got {_word(v)} (quote it)")
        return {str(k): str(v) for k, v in m.items()}

    # -- shared parts -------------------------------------------------------------------------
    def selector(self, spec: dict[str, Any], required: bool) -> None:
        ws = self.mapping(spec.get("workloadSelector"), "spec/workloadSelector", required)
        if ws or required:
            labels = self.string_map(ws.get("labels"), "spec/workloadSelector/labels", required=bool(ws) or required)
            if ws and not labels and isinstance(ws.get("labels"), dict):
                self.bad("spec/workloadSelector/labels", "is empty: name at least one label")
        self.boolean(spec.get("isGateway"), "spec/isGateway")
        self.string(spec.get("applyToTraffic"), "spec/applyToTraffic", choices=TRAFFIC)

    def match(self, value: Any, path: str) -> None:
        m = self.mapping(value, path)
        vhost = self.mapping(m.get("vhost"), f"{path}/vhost")
        if vhost:
            self.string(vhost.get("name"), f"{path}/vhost/name")
            self.integer(vhost.get("port"), f"{path}/vhost/port", 1, 65535)
            route = self.mapping(vhost.get("route"), f"{path}/vhost/route")
            self.string(route.get("name_match"), f"{path}/vhost/route/name_match")
            self.seq(route.get("header_match"), f"{path}/vhost/route/header_match")

    def targets(self, value: Any, path: str) -> None:
        for j, t in enumerate(self.seq(value, path)):
            tp = f"{path}[{j}]"
            t = self.mapping(t, tp)
            if not t:
                continue
            self.string(t.get("kind"), f"{tp}/kind", choices=("Service", "ServiceEntry", "VirtualService"))
            self.string(t.get("name"), f"{tp}/name", required=True)
            self.string(t.get("namespace"), f"{tp}/namespace")
            self.integer(t.get("port"), f"{tp}/port", 1, 65535)


def problems(type_name: str, spec: dict[str, Any]) -> list[tuple[str, str]]:
    """(YAML path, message) for every field of an ASM object's spec that ASM would reject or ignore."""
    c = _Checker()
    if type_name == LOCAL_RATE_LIMITER:
        _local_limiter(c, spec)
    elif type_name == GLOBAL_RATE_LIMITER:
        _global_limiter(c, spec)
    elif type_name == CIRCUIT_BREAKER:
        _circuit_breaker(c, spec)
    elif type_name == SLO:
        _slo(c, spec)
    return c.out


def _configs(c: _Checker, spec: dict[str, Any]):
    """Each well-formed entry of `spec.configs` with its path, after the name and match every ASM kind shares."""
    for i, cfg in enumerate(c.seq(spec.get("configs"), "spec/configs", required=True)):
        p = f"spec/configs[{i}]"
        cfg = c.mapping(cfg, p)
        if not cfg:
            continue
        c.string(cfg.get("name"), f"{p}/name")
        c.match(cfg.get("match"), f"{p}/match")
        yield p, cfg


def _local_limiter(c: _Checker, spec: dict[str, Any]) -> None:
    c.selector(spec, required=False)  # client-side limiters (ASM 1.25+) may pick callers by target_services
    for p, cfg in _configs(c, spec):
        c.targets(cfg.get("target_services"), f"{p}/target_services")
        limit = c.mapping(cfg.get("limit"), f"{p}/limit", required=True)
        if limit:
            c.duration(limit.get("fill_interval"), f"{p}/limit/fill_interval", required=True)
            c.integer(limit.get("quota"), f"{p}/limit/quota", 1, required=True)
            c.boolean(limit.get("per_downstream_connection"), f"{p}/limit/per_downstream_connection")
            c.string(limit.get("custom_response_body"), f"{p}/limit/custom_response_body")
            c.string_map(limit.get("response_header_to_add"), f"{p}/limit/response_header_to_add")
            c.integer(limit.get("status"), f"{p}/limit/status", 400, 599)
        for j, o in enumerate(c.seq(cfg.get("limit_overrides"), f"{p}/limit_overrides")):
            o = c.mapping(o, f"{p}/limit_overrides[{j}]")
            lim = c.mapping(o.get("limit"), f"{p}/limit_overrides[{j}]/limit", required=bool(o))
            if lim:
                c.duration(lim.get("fill_interval"), f"{p}/limit_overrides[{j}]/limit/fill_interval", required=True)
                c.integer(lim.get("quota"), f"{p}/limit_overrides[{j}]/limit/quota", 1, required=True)


def _global_limiter(c: _Checker, spec: dict[str, Any]) -> None:
    c.selector(spec, required=True)
    svc = c.mapping(spec.get("rateLimitService"), "spec/rateLimitService", required=True)
    if svc:
        c.string(svc.get("host"), "spec/rateLimitService/host", required=True)
        c.integer(svc.get("port"), "spec/rateLimitService/port", 1, 65535, required=True)
        if svc.get("timeout") is not None:
            c.duration(svc.get("timeout"), "spec/rateLimitService/timeout")
    for p, cfg in _configs(c, spec):
        c.targets(cfg.get("target_services"), f"{p}/target_services")  # ASM 1.25+, as on the local limiter
        limit = c.mapping(cfg.get("limit"), f"{p}/limit", required=True)
        if limit:
            c.string(limit.get("unit"), f"{p}/limit/unit", required=True, choices=GLOBAL_UNITS)
            c.integer(limit.get("quota"), f"{p}/limit/quota", 1, required=True)


def _circuit_breaker(c: _Checker, spec: dict[str, Any]) -> None:
    c.selector(spec, required=True)
    for p, cfg in _configs(c, spec):
        c.targets(cfg.get("target_services"), f"{p}/target_services")
        bc = c.mapping(cfg.get("breaker_config"), f"{p}/breaker_config", required=True)
        if not bc:
            continue
        b = f"{p}/breaker_config"
        c.duration(bc.get("window_size"), f"{b}/window_size", maximum=MAX_WINDOW_S)
        c.duration(bc.get("break_duration"), f"{b}/break_duration")
        c.duration(bc.get("slow_request_rt"), f"{b}/slow_request_rt")
        c.duration(bc.get("average_request_rt"), f"{b}/average_request_rt")
        slow = c.integer(bc.get("max_slow_requests"), f"{b}/max_slow_requests", 1)
        c.integer(bc.get("min_request_amount"), f"{b}/min_request_amount", 0)
        ep = c.mapping(bc.get("error_percent"), f"{b}/error_percent")
        if ep:
            v = ep.get("value")
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v <= 100:
                c.bad(f"{b}/error_percent/value", f"is {v!r}; must be a percentage in (0, 100]")
        if slow is not None and bc.get("slow_request_rt") is None:
            c.bad(f"{b}/max_slow_requests", "is set but slow_request_rt is not: no request counts as slow")
        if not ep and slow is None:
            c.bad(b, "sets neither error_percent nor max_slow_requests: the circuit never opens")
        cr = c.mapping(bc.get("custom_response"), f"{b}/custom_response")
        if cr:
            c.integer(cr.get("status_code"), f"{b}/custom_response/status_code", 100, 599)
            c.string_map(cr.get("header_to_add"), f"{b}/custom_response/header_to_add")
            c.string(cr.get("body"), f"{b}/custom_response/body")


def _slo(c: _Checker, spec: dict[str, Any]) -> None:
    c.string(spec.get("service"), "spec/service", required=True)
    c.string(spec.get("period"), "spec/period", required=True, choices=SLO_PERIODS)
    c.string_map(spec.get("labels"), "spec/labels")
    names: dict[str, int] = {}
    for i, s in enumerate(c.seq(spec.get("slos"), "spec/slos", required=True)):
        p = f"spec/slos[{i}]"
        s = c.mapping(s, p)
        if not s:
            continue
        name = c.string(s.get("name"), f"{p}/name", required=True)
        if name is not None:
            if name in names:
                c.bad(f"{p}/name", f"{name!r} is used twice (first at slos[{names[name]}]); names must be unique")
            names.setdefault(name, i)
        if objective(s.get("objective")) is None:
            c.bad(f"{p}/objective", f"is {s.get('objective')!r}; must be a percentage in (0, 100], e.g. \"99.9\"")
        c.string_map(s.get("labels"), f"{p}/labels")
        plugin = c.mapping(c.mapping(s.get("sli"), f"{p}/sli", required=True).get("plugin"), f"{p}/sli/plugin",
                           required="sli" in s)
        if plugin:
            pid = c.string(plugin.get("id"), f"{p}/sli/plugin/id", required=True, choices=SLI_PLUGINS)
            opts = c.mapping(plugin.get("options"), f"{p}/sli/plugin/options")
            if pid == "latency" and latency_threshold_ms(opts) is None:
                c.bad(f"{p}/sli/plugin/options", "a latency SLI needs a threshold (e.g. threshold: 200ms)")
        al = c.mapping(s.get("alerting"), f"{p}/alerting")
        if al:
            c.string(al.get("name"), f"{p}/alerting/name")
            c.string_map(al.get("labels"), f"{p}/alerting/labels")
            c.string_map(al.get("annotations"), f"{p}/alerting/annotations")
            for key in ("pageAlert", "ticketAlert"):
                a = c.mapping(al.get(key), f"{p}/alerting/{key}")
                c.string_map(a.get("labels"), f"{p}/alerting/{key}/labels")
                c.string_map(a.get("annotations"), f"{p}/alerting/{key}/annotations")
                c.boolean(a.get("disable"), f"{p}/alerting/{key}/disable")


def objective(value: Any) -> float | None:
    """Percent of an ASM objective (`"99.9"`, 99.9), None when it is not in (0, 100]."""
    if isinstance(value, bool):
        return None
    try:
        v = float(str(value).strip().rstrip("%"))
    except (TypeError, ValueError):
        return None
    return v if 0 < v <= 100 else None


def latency_threshold_ms(options: dict[str, Any]) -> float | None:
    """The latency plugin's threshold in ms: `threshold`/`latency` as a duration (`200ms`) or a number of ms."""
    for key in ("threshold", "latency", "thresholdMs"):
        v = options.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            return float(v)
        if isinstance(v, str):
            s = duration_s(v)
            if s is None:
                try:
                    s = float(v) / 1000.0
                except ValueError:
                    continue
            if s > 0:
                return s * 1000.0
    return None
