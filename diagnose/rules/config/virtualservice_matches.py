"""VirtualService match shadowing: rules that can never be reached and match clauses that never apply.

Envoy takes the first rule that matches, so a rule after a catch-all, or one
whose every match clause repeats an earlier clause, is dead configuration. A
clause that only repeats (or is covered by) an earlier one is merely
ineffective. Compared clauses ignore their `name`, as Istio does.
"""
from __future__ import annotations

import json
from typing import Any

from diagnose.context import Context
from diagnose.rule import Metadata
from diagnose.rules.config.util import as_dict, as_list, as_str
from mesh.config import ConfigObject

VS = "VirtualService"


def _canonical(match: Any) -> str:
    m = dict(as_dict(match))
    m.pop("name", None)
    return json.dumps(m, sort_keys=True, default=str)


def _rule_name(rule: dict[str, Any], index: int) -> str:
    name = as_str(rule.get("name"))
    return f"{index} ({name!r})" if name else str(index)


def _match_name(match: dict[str, Any], index: int) -> str:
    name = as_str(match.get("name"))
    return f"{index} ({name!r})" if name else str(index)


def _prefix_cover(earlier: dict[str, Any], later: dict[str, Any]) -> bool:
    """True when an earlier clause with a uri prefix accepts every request a later prefix clause accepts."""
    p1 = as_str(as_dict(earlier.get("uri")).get("prefix"))
    p2 = as_str(as_dict(later.get("uri")).get("prefix"))
    if not p1 or not p2 or not p2.startswith(p1):
        return False
    rest1 = {k: v for k, v in earlier.items() if k not in ("uri", "name")}
    rest2 = {k: v for k, v in later.items() if k not in ("uri", "name")}
    return all(k in rest2 and rest2[k] == v for k, v in rest1.items())


def _is_catch_all(rule: dict[str, Any]) -> bool:
    matches = as_list(rule.get("match"))
    return not matches or any(not {k for k in as_dict(m) if k != "name"} for m in matches)


class UnreachableRules:
    """Rules after a catch-all or with only repeated matches; match clauses repeated or covered earlier."""

    metadata = Metadata(
        name="virtualservice.UnreachableRules",
        description="HTTP/TCP/TLS rules are reachable and their match clauses take effect",
        inputs=(VS,),
        codes=("MS1009", "MS1010"),
    )

    def analyze(self, ctx: Context) -> None:
        for vs in ctx.for_each(VS):
            for proto in ("http", "tcp", "tls"):
                self._check(ctx, vs, proto)

    def _check(self, ctx: Context, vs: ConfigObject, proto: str) -> None:
        kind = proto.upper()
        seen: dict[str, int] = {}
        prefix_clauses: list[dict[str, Any]] = []
        catch_all: int | None = None
        for i, raw in enumerate(as_list(vs.spec.get(proto))):
            rule = as_dict(raw)
            path = f"spec/{proto}[{i}]"
            matches = [as_dict(m) for m in as_list(rule.get("match"))]
            if catch_all is not None:
                reason = ("only the last rule may have no match" if not matches
                          else f"rule {catch_all} before it matches every request")
                ctx.report("MS1009", vs, path, kind=kind, rule=_rule_name(rule, i), reason=reason)
                continue
            if _is_catch_all(rule):
                catch_all = i
            repeated = 0
            for j, m in enumerate(matches):
                key = _canonical(m)
                if key in seen:
                    repeated += 1
                    ctx.report("MS1010", vs, f"{path}/match[{j}]", kind=kind, rule=_rule_name(rule, i),
                               match=_match_name(m, j), reason=f"rule {seen[key]} accepts the same requests")
                elif proto == "http" and any(_prefix_cover(e, m) for e in prefix_clauses):
                    ctx.report("MS1010", vs, f"{path}/match[{j}]", kind=kind, rule=_rule_name(rule, i),
                               match=_match_name(m, j), reason="an earlier match with a shorter uri prefix "
                               "accepts these requests")
                seen[key] = i
                prefix_clauses.append(m)
            if matches and repeated == len(matches):
                ctx.report("MS1009", vs, path, kind=kind, rule=_rule_name(rule, i),
                           reason="every match is used by an earlier rule")
