"""EnvoyFilter checks of Istio's webhook (pkg/config/validation/envoyfilter)."""
from __future__ import annotations

import re
from typing import Any

from mesh.config.schema.compiler import SEMANTIC, Issue
from mesh.config.schema.webhook.common import is_set, list_at, map_at

_MATCH_FOR_APPLY_TO = {"LISTENER": "listener", "FILTER_CHAIN": "listener", "NETWORK_FILTER": "listener",
                       "HTTP_FILTER": "listener", "ROUTE_CONFIGURATION": "routeConfiguration",
                       "VIRTUAL_HOST": "routeConfiguration", "HTTP_ROUTE": "routeConfiguration", "CLUSTER": "cluster"}
_HCM = ("envoy.filters.network.http_connection_manager", "envoy.http_connection_manager")


def envoy_filter(spec: dict[str, Any], out: list[Issue]) -> None:
    for i, cp in enumerate(list_at(spec, "configPatches")):
        p = f"spec/configPatches[{i}]"
        d = p.replace("/", ".")
        if not isinstance(cp, dict):
            continue  # null items are the schema's (MS0007)
        apply_to = cp.get("applyTo")
        if not apply_to or apply_to == "INVALID":
            out.append(Issue(p, SEMANTIC, f"{d}: missing applyTo"))
        patch = cp.get("patch")
        if not isinstance(patch, dict):
            out.append(Issue(p, SEMANTIC, f"{d}: missing patch"))
        else:
            op = patch.get("operation")
            if not op or op == "INVALID":
                out.append(Issue(f"{p}/patch", SEMANTIC, f"{d}.patch: missing patch operation"))
            elif op != "REMOVE" and patch.get("value") is None:
                out.append(Issue(f"{p}/patch", SEMANTIC, f"{d}.patch: missing patch value for a {op} operation"))
        match = map_at(cp, "match")
        version = map_at(match, "proxy").get("proxyVersion")
        if isinstance(version, str) and version:
            try:
                re.compile(version)
            except re.error as exc:
                out.append(Issue(f"{p}/match/proxy/proxyVersion", SEMANTIC, f"{d}.match.proxy.proxyVersion: invalid "
                                                                            f"regex ({exc})"))
        kinds_set = [k for k in ("listener", "routeConfiguration", "cluster") if match.get(k) is not None]
        wanted = _MATCH_FOR_APPLY_TO.get(apply_to) if isinstance(apply_to, str) else None
        if wanted and kinds_set and wanted not in kinds_set:
            out.append(Issue(f"{p}/match", SEMANTIC, f"{d}.match: applyTo {apply_to} needs a {wanted} match, "
                                                     f"not {kinds_set[0]}"))
        flt = map_at(map_at(map_at(match, "listener"), "filterChain"), "filter")
        if wanted == "listener" and "filter" in map_at(map_at(match, "listener"), "filterChain"):
            fp = f"{p}/match/listener/filterChain/filter"
            if not is_set(flt, "name"):
                out.append(Issue(fp, SEMANTIC, f"{fp.replace('/', '.')}: filter match has no name to match on"))
            elif flt.get("subFilter") is not None:
                if apply_to != "HTTP_FILTER":
                    out.append(Issue(f"{fp}/subFilter", SEMANTIC, f"{fp.replace('/', '.')}.subFilter: a subFilter "
                                                                  "match can be used with applyTo HTTP_FILTER only"))
                elif flt.get("name") not in _HCM:
                    out.append(Issue(f"{fp}/subFilter", SEMANTIC, f"{fp.replace('/', '.')}.subFilter: a subFilter "
                                     f"match requires the filter match to name {_HCM[0]}"))
                elif not is_set(map_at(flt, "subFilter"), "name"):
                    out.append(Issue(f"{fp}/subFilter", SEMANTIC, f"{fp.replace('/', '.')}.subFilter: subFilter "
                                                                  "match has no name to match on"))
