"""RDS: VirtualService semantics as Envoy routes (sidecar outbound, ingress gateway, inbound).

One virtual host per service port (domains: every short and long form of the
name, like Istio's `9080` route config), routes from the first VirtualService
bound to that host (Istio picks one for sidecars), and Istio's defaults where the
config is silent: no timeout, 2 retries on connect-failure/refused-stream/
unavailable/cancelled/503. A destination whose cluster does not exist (an unknown
host, a subset no DestinationRule defines) still gets its route: Envoy answers
503 NC at runtime, exactly the symptom a real Istio mesh shows.
"""
from __future__ import annotations

from typing import Any

from mesh.config.model import ConfigObject
from mesh.controlplane.clusters import cluster_name
from mesh.controlplane.context import ConfigError, ProxyContext, duration
from mesh.controlplane.policy import host_matches
from mesh.controlplane.registry import Service, ServicePort, fqdn
from mesh.controlplane.telemetry import ALL_MESH_HEADERS

ROUTE_TYPE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
FAULT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
DEFAULT_RETRY = {
    "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
    "num_retries": 2,
    "retriable_status_codes": [503],
    "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
    "host_selection_retry_max_attempts": "5",
}
OUTBOUND_ROUTE = "outbound"


def _service_meta(host: str) -> dict[str, str]:
    """Telemetry names of a destination host (also for hosts no Service backs, as Istio reports them)."""
    parts = host.split(".")
    return {"service": host, "service_name": parts[0], "service_namespace": parts[1] if len(parts) > 1 else "unknown"}


def _hdr(name: str, value: str) -> dict[str, Any]:
    return {"header": {"key": name, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}


def _dest_headers(host: str, registry) -> list[dict[str, Any]]:
    svc = registry.service(host)
    name, ns = (svc.name, svc.namespace) if svc else (host.split(".")[0], host.split(".")[1] if host.count(".") >= 1 else "unknown")
    return [_hdr("x-ms-dst-service", host), _hdr("x-ms-dst-service-name", name),
            _hdr("x-ms-dst-service-namespace", ns)]


def _string_match(spec: Any, where: str) -> dict[str, Any]:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError(f"{where}: expected exactly one of exact, prefix, regex")
    (kind, value), = spec.items()
    if kind == "exact":
        return {"exact": str(value)}
    if kind == "prefix":
        return {"prefix": str(value)}
    if kind == "regex":
        return {"safe_regex": {"regex": str(value)}}
    raise ConfigError(f"{where}: unknown match type {kind!r} (use exact, prefix or regex)")


def _match(m: dict[str, Any] | None, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    m = m or {}
    uri = m.get("uri")
    if uri is None:
        out["prefix"] = "/"
    else:
        sm = _string_match(uri, f"{where}.uri")
        if "exact" in sm:
            out["path"] = sm["exact"]
        elif "prefix" in sm:
            out["prefix"] = sm["prefix"]
        else:
            out["safe_regex"] = sm["safe_regex"]
        if m.get("ignoreUriCase"):
            out["case_sensitive"] = False
    headers = []
    for name, spec in (m.get("headers") or {}).items():
        headers.append({"name": name, "string_match": _string_match(spec, f"{where}.headers.{name}")})
    for key, header in (("method", ":method"), ("authority", ":authority"), ("scheme", ":scheme")):
        if key in m:
            headers.append({"name": header, "string_match": _string_match(m[key], f"{where}.{key}")})
    if headers:
        out["headers"] = headers
    qp = [{"name": k, "string_match": _string_match(v, f"{where}.queryParams.{k}")} for k, v in (m.get("queryParams") or {}).items()]
    if qp:
        out["query_parameters"] = qp
    return out


def _fault(f: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {"@type": FAULT_TYPE}

    def pct(spec: dict[str, Any]) -> dict[str, Any]:
        value = (spec.get("percentage") or {}).get("value", spec.get("percent", 100))
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: percentage.value must be a number, got {value!r}") from None
        if not 0 <= value <= 100:
            raise ConfigError(f"{where}: percentage.value must be within 0..100, got {value}")
        return {"numerator": int(round(value * 10000)), "denominator": "MILLION"}

    if "delay" in f:
        d = f["delay"] or {}
        if "fixedDelay" not in d:
            raise ConfigError(f"{where}.delay: fixedDelay is required")
        out["delay"] = {"fixed_delay": duration(d["fixedDelay"], f"{where}.delay.fixedDelay"), "percentage": pct(d)}
    if "abort" in f:
        a = f["abort"] or {}
        status = a.get("httpStatus")
        if not isinstance(status, int) or not 200 <= status < 600:
            raise ConfigError(f"{where}.abort.httpStatus: must be an HTTP status code, got {status!r}")
        out["abort"] = {"http_status": status, "percentage": pct(a)}
    return out


def _retry(r: dict[str, Any], where: str) -> dict[str, Any] | None:
    attempts = r.get("attempts", 2)
    if not isinstance(attempts, int) or attempts < 0:
        raise ConfigError(f"{where}.attempts: must be a non-negative integer, got {attempts!r}")
    if attempts == 0:
        return None
    out = dict(DEFAULT_RETRY, num_retries=attempts)
    if r.get("retryOn"):
        on = [p.strip() for p in str(r["retryOn"]).split(",") if p.strip()]
        codes = [int(p) for p in on if p.isdigit()]
        named = [p for p in on if not p.isdigit()]
        if codes:
            named.append("retriable-status-codes")
        out["retry_on"] = ",".join(dict.fromkeys(named))
        out["retriable_status_codes"] = codes or [503]
    if r.get("perTryTimeout"):
        out["per_try_timeout"] = duration(r["perTryTimeout"], f"{where}.perTryTimeout")
    return out


def _destination(ctx: ProxyContext, vs: ConfigObject, d: dict[str, Any], default_port: int, where: str) -> tuple[str, str]:
    """(cluster name, destination host) of an Istio Destination."""
    dest = d.get("destination") if isinstance(d, dict) else None
    if not isinstance(dest, dict) or not isinstance(dest.get("host"), str) or not dest["host"]:
        raise ConfigError(f"{where}.destination.host is required")
    host = fqdn(dest["host"], vs.namespace or "default")
    port = (dest.get("port") or {}).get("number")
    if port is None:
        svc = ctx.registry.service(host)
        http_ports = [p.port for p in svc.ports if p.protocol == "http"] if svc else []
        port = http_ports[0] if len(http_ports) == 1 else default_port
    return cluster_name("outbound", int(port), str(dest.get("subset") or ""), host), host


def _mirrors(ctx: ProxyContext, vs: ConfigObject, http: dict[str, Any], port: int, where: str) -> list[dict[str, Any]]:
    """Envoy shadow policies for `mirror`/`mirrorPercentage` and `mirrors`: the copies' answers are discarded."""
    def fraction(spec: Any, w: str) -> dict[str, Any]:
        value = (spec or {}).get("value", 100) if isinstance(spec, dict) else 100
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{w}.value: must be a number, got {value!r}") from None
        if not 0 <= value <= 100:
            raise ConfigError(f"{w}.value: must be within 0..100, got {value}")
        return {"default_value": {"numerator": int(round(value * 10000)), "denominator": "MILLION"}}

    out = []
    if isinstance(http.get("mirror"), dict):
        name, _ = _destination(ctx, vs, {"destination": http["mirror"]}, port, f"{where}.mirror")
        out.append({"cluster": name, "runtime_fraction": fraction(http.get("mirrorPercentage"), f"{where}.mirrorPercentage")})
    for j, m in enumerate(http.get("mirrors") or []):
        w = f"{where}.mirrors[{j}]"
        if not isinstance(m, dict):
            raise ConfigError(f"{w}: expected a mapping")
        name, _ = _destination(ctx, vs, m, port, w)
        out.append({"cluster": name, "runtime_fraction": fraction(m.get("percentage"), f"{w}.percentage")})
    return out


def vs_routes(ctx: ProxyContext, vs: ConfigObject, port: int) -> list[dict[str, Any]]:
    """Envoy routes for one VirtualService's `http` section, as seen on `port`."""
    out = []
    for i, http in enumerate(vs.spec.get("http") or []):
        where = f"VirtualService {vs.namespace}/{vs.name} spec.http[{i}]"
        if not isinstance(http, dict):
            raise ConfigError(f"{where}: expected a mapping")
        action: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        first_host = None
        if http.get("redirect"):
            r = http["redirect"]
            action = {"redirect": {k2: r[k1] for k1, k2 in (("uri", "path_redirect"), ("authority", "host_redirect")) if k1 in r}}
        elif http.get("directResponse"):
            dr = http["directResponse"]
            action = {"direct_response": {"status": int(dr.get("status", 200)),
                                          **({"body": {"inline_string": str((dr.get("body") or {}).get("string", ""))}}
                                             if dr.get("body") else {})}}
        else:
            dests = http.get("route") or []
            if not dests:
                raise ConfigError(f"{where}.route: at least one destination is required")
            clusters = []
            for j, d in enumerate(dests):
                name, host = _destination(ctx, vs, d, port, f"{where}.route[{j}]")
                first_host = first_host or host
                w = d.get("weight")
                if w is not None and (not isinstance(w, int) or w < 0):
                    raise ConfigError(f"{where}.route[{j}].weight: must be a non-negative integer, got {w!r}")
                clusters.append((name, w))
            if len(clusters) == 1:
                route: dict[str, Any] = {"cluster": clusters[0][0]}
            else:
                if any(w is None for _, w in clusters):
                    raise ConfigError(f"{where}.route: every destination needs a weight when there are several")
                weighted = [{"name": n, "weight": w} for n, w in clusters if w > 0]
                if not weighted:
                    raise ConfigError(f"{where}.route: all weights are 0")
                route = {"weighted_clusters": {"clusters": weighted}} if len(weighted) > 1 else {"cluster": weighted[0]["name"]}
            route["timeout"] = duration(http["timeout"], f"{where}.timeout") if http.get("timeout") else "0s"
            if "retries" in http:
                rp = _retry(http["retries"] or {}, f"{where}.retries")
                if rp:
                    route["retry_policy"] = rp
            else:
                route["retry_policy"] = DEFAULT_RETRY
            rw = http.get("rewrite") or {}
            if rw.get("uri") is not None:
                route["prefix_rewrite"] = str(rw["uri"])
            if rw.get("authority"):
                route["host_rewrite_literal"] = str(rw["authority"])
            action = {"route": route}
        if http.get("fault"):
            extra["typed_per_filter_config"] = {"envoy.filters.http.fault": _fault(http["fault"], f"{where}.fault")}
        hdrs = http.get("headers") or {}
        req, resp = hdrs.get("request") or {}, hdrs.get("response") or {}
        add = [_hdr(k, str(v)) for k, v in (req.get("set") or {}).items()]
        add += [{"header": {"key": k, "value": str(v)}, "append_action": "APPEND_IF_EXISTS_OR_ADD"} for k, v in (req.get("add") or {}).items()]
        if first_host:
            add += _dest_headers(first_host, ctx.registry)
        if add:
            extra["request_headers_to_add"] = add
        if req.get("remove"):
            extra["request_headers_to_remove"] = list(req["remove"])
        radd = [_hdr(k, str(v)) for k, v in (resp.get("set") or {}).items()]
        radd += [{"header": {"key": k, "value": str(v)}, "append_action": "APPEND_IF_EXISTS_OR_ADD"} for k, v in (resp.get("add") or {}).items()]
        if radd:
            extra["response_headers_to_add"] = radd
        if resp.get("remove"):
            extra["response_headers_to_remove"] = list(resp["remove"])
        if "route" in action:
            mirrors = _mirrors(ctx, vs, http, port, where)
            if mirrors:
                action["route"]["request_mirror_policies"] = mirrors
        matches = http.get("match") or [None]
        for k, m in enumerate(matches):
            mwhere = f"{where}.match[{k}]"
            if m is not None and not isinstance(m, dict):
                raise ConfigError(f"{mwhere}: expected a mapping")
            if m and m.get("port") and int(m["port"]) != port:
                continue
            if m and m.get("sourceLabels") and not all(ctx.workload.labels.get(a) == b for a, b in m["sourceLabels"].items()):
                continue
            out.append({
                "name": str(http.get("name") or f"{vs.namespace}/{vs.name}.{i}"),
                "match": _match(m, mwhere),
                **action, **extra,
                "metadata": {"filter_metadata": {"istio": {
                    "config": f"/apis/networking.istio.io/v1/namespaces/{vs.namespace}/virtual-service/{vs.name}",
                    **(_service_meta(first_host) if first_host else {})}}},
                "decorator": {"operation": f"{first_host or vs.name}:{port}/*"},
            })
    return out


def default_route(svc: Service, port: ServicePort) -> dict[str, Any]:
    return {"name": "default", "match": {"prefix": "/"},
            "route": {"cluster": cluster_name("outbound", port.port, "", svc.hostname), "timeout": "0s",
                      "retry_policy": DEFAULT_RETRY},
            "decorator": {"operation": f"{svc.hostname}:{port.port}/*"}}


def _domains(svc: Service, port: ServicePort, client_ns: str, bare: bool) -> list[str]:
    names = [svc.hostname, f"{svc.name}.{svc.namespace}.svc", f"{svc.name}.{svc.namespace}"]
    if svc.namespace == client_ns:
        names.append(svc.name)
    out = [f"{n}:{port.port}" for n in names]
    return (names + out) if bare else out


def outbound_route_config(ctx: ProxyContext) -> dict[str, Any]:
    """The sidecar's outbound routes: one virtual host per service port."""
    vhosts = []
    seen_bare: set[str] = set()
    for svc in ctx.registry.services:
        for port in svc.ports:
            if port.protocol != "http":
                continue
            bare = svc.hostname not in seen_bare
            seen_bare.add(svc.hostname)
            vss = ctx.index.virtual_services(svc.hostname, client_namespace=ctx.client_namespace)
            routes = vs_routes(ctx, vss[0], port.port) if vss else []
            if not vss:
                routes = [default_route(svc, port)]
            vhosts.append({
                "name": f"{svc.hostname}:{port.port}",
                "domains": _domains(svc, port, ctx.client_namespace, bare),
                "routes": routes,
                "request_headers_to_add": _dest_headers(svc.hostname, ctx.registry),
                "include_request_attempt_count": True,
            })
    w = ctx.workload
    return {
        "@type": ROUTE_TYPE, "name": OUTBOUND_ROUTE, "validate_clusters": False,
        "most_specific_header_mutations_wins": True,
        "virtual_hosts": vhosts,
        "request_headers_to_add": [
            _hdr("x-ms-src-workload", w.name), _hdr("x-ms-src-namespace", w.namespace),
            _hdr("x-ms-src-app", w.app), _hdr("x-ms-src-version", w.version)],
    }


def gateway_server_supported(server: dict[str, Any], proto: str) -> bool:
    if proto in ("HTTP", "HTTP2"):
        return True
    return proto == "HTTPS" and str(((server or {}).get("tls") or {}).get("mode", "SIMPLE")).upper() == "SIMPLE"


def gateway_route_configs(ctx: ProxyContext) -> dict[int, dict[str, Any]]:
    """Route configs `http.<port>` for each HTTP server of the Gateways selecting this gateway workload."""
    w = ctx.workload
    by_port: dict[int, list[dict[str, Any]]] = {}
    for gw in ctx.index.of_kind("Gateway"):
        sel = gw.spec.get("selector") or {}
        if not sel or not all(w.labels.get(k) == v for k, v in sel.items()):
            continue
        for si, server in enumerate(gw.spec.get("servers") or []):
            where = f"Gateway {gw.namespace}/{gw.name} spec.servers[{si}]"
            p = (server or {}).get("port") or {}
            proto = str(p.get("protocol", "HTTP")).upper()
            if not isinstance(p.get("number"), int):
                raise ConfigError(f"{where}.port.number is required")
            if not gateway_server_supported(server, proto):
                ctx.warnings.append(f"{where}: protocol {proto} (tls mode "
                                    f"{((server or {}).get('tls') or {}).get('mode', '-')}) is not supported by the "
                                    "bundled gateway (HTTP, HTTP2, HTTPS with tls.mode SIMPLE); skipped")
                continue
            vh = by_port.setdefault(p["number"], [])
            hosts = [h.split("/", 1)[-1] for h in (server.get("hosts") or ["*"]) if isinstance(h, str)]
            for vs in ctx.index.of_kind("VirtualService"):
                gws = [g if "/" in g else f"{vs.namespace}/{g}" for g in (vs.spec.get("gateways") or []) if isinstance(g, str)]
                if f"{gw.namespace}/{gw.name}" not in gws:
                    continue
                for h in vs.spec.get("hosts") or []:
                    if not any(host_matches(sh, h) or host_matches(h, sh) for sh in hosts):
                        continue
                    domains = ["*"] if h == "*" else [h, f"{h}:{p['number']}"]
                    if any(set(domains) & set(v["domains"]) for v in vh):
                        continue  # Istio merges; the first VirtualService for a host wins here
                    vh.append({"name": f"{h}:{p['number']}", "domains": domains,
                               "routes": vs_routes(ctx, vs, p["number"]), "include_request_attempt_count": True})
    out = {}
    for port, vhosts in by_port.items():
        out[port] = {"@type": ROUTE_TYPE, "name": f"http.{port}", "validate_clusters": False,
                     "most_specific_header_mutations_wins": True, "virtual_hosts": vhosts,
                     "request_headers_to_remove": ALL_MESH_HEADERS,
                     "request_headers_to_add": [
                         _hdr("x-ms-src-workload", w.name), _hdr("x-ms-src-namespace", w.namespace),
                         _hdr("x-ms-src-app", w.app), _hdr("x-ms-src-version", w.version)]}
    return out


def inbound_route_config(container_port: int, service_host: str | None) -> dict[str, Any]:
    return {"name": f"inbound|{container_port}||", "validate_clusters": False, "virtual_hosts": [{
        "name": f"inbound|http|{container_port}", "domains": ["*"],
        "routes": [{"name": "default", "match": {"prefix": "/"},
                    "route": {"cluster": cluster_name("inbound", container_port, "", ""), "timeout": "0s"},
                    "decorator": {"operation": f"{service_host or 'unknown'}:{container_port}/*"}}],
    }]}  # the x-ms-* peer headers stay: the access log reads them after routing
