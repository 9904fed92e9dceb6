"""Find/hide expressions (Kiali-style) turned into Cytoscape selectors.

`rps > 10 and error >= 5`, `name ~ reviews or health = failing`, `mismatch`, `!mtls`.
Clauses joined by `and` match together; `or` joins alternatives. Because the
result is a selector, finding or hiding is pure styling in the browser: the
elements are not rebuilt, which keeps 1,000-node graphs responsive.
"""
from __future__ import annotations

import re

# field -> (element kind, data key, numeric)
FIELDS: dict[str, tuple[str, str, bool]] = {
    "name": ("node", "name", False), "namespace": ("node", "namespace", False), "ns": ("node", "namespace", False),
    "app": ("node", "app", False), "version": ("node", "version", False), "type": ("node", "type", False),
    "node": ("node", "type", False), "rps": ("*", "rps", True), "error": ("*", "error_pct", True),
    "%error": ("*", "error_pct", True), "p95": ("edge", "p95_ms", True), "p99": ("edge", "p99_ms", True),
    "health": ("*", "health", False), "mtls": ("edge", "mtls_state", False), "protocol": ("edge", "protocol", False),
}
# bare words -> (kind, selector body)
SHORTHANDS: dict[str, tuple[str, str]] = {
    "healthy": ("*", '[health = "healthy"]'), "degraded": ("*", '[health = "degraded"]'),
    "failing": ("*", '[health = "failing"]'), "unhealthy": ("*", '[health != "healthy"][health != "idle"][health != "na"]'),
    "idle": ("node", '[health = "idle"]'), "mtls": ("edge", '[mtls_state != "none"]'),
    "!mtls": ("edge", '[mtls_state = "none"]'), "mismatch": ("edge", '[mtls_state = "mismatch"]'),
    "outsider": ("node", "[?outsider]"), "service": ("node", '[type = "service"]'),
    "workload": ("node", '[type = "workload"]'), "tcp": ("edge", '[protocol = "tcp"]'),
}
_OPS = {"=": "=", "!=": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<=", "~": "*=", "!~": "!*="}
_CLAUSE = re.compile(r"^\s*(%?[a-z0-9]+)\s*(!=|>=|<=|!~|=|>|<|~)\s*(.+?)\s*$", re.I)
# node rps is the inbound rate; `rps` on an edge is the edge rate
_NODE_KEYS = {"rps": "rps_in"}


class ExpressionError(ValueError):
    """Shown under the input box; names the clause that could not be read."""


def _clause(text: str) -> tuple[str, str]:
    word = text.strip().lower()
    if word in SHORTHANDS:
        return SHORTHANDS[word]
    m = _CLAUSE.match(text)
    if not m:
        raise ExpressionError(f"cannot read {text.strip()!r}: expected FIELD OP VALUE (e.g. rps > 10) or a word "
                              f"like {', '.join(sorted(SHORTHANDS)[:5])}")
    field, op, value = m.group(1).lower(), m.group(2), m.group(3).strip().strip("'\"")
    if field not in FIELDS:
        raise ExpressionError(f"unknown field {field!r} in {text.strip()!r} (known: {', '.join(sorted(FIELDS))})")
    kind, key, numeric = FIELDS[field]
    if numeric:
        try:
            number = float(value.rstrip("%").removesuffix("ms"))
        except ValueError:
            raise ExpressionError(f"{field} needs a number, got {value!r}") from None
        if op in ("~", "!~"):
            raise ExpressionError(f"{op} compares text; {field} is a number")
        return kind, f"[{key} {_OPS[op]} {number:g}]"
    if op in (">", ">=", "<", "<="):
        raise ExpressionError(f"{op} compares numbers; {field} is text")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return kind, f'[{key} {_OPS[op]} "{escaped}"]'


def to_selector(expression: str) -> str:
    """A Cytoscape selector for `expression`; empty expression gives an empty selector."""
    expression = (expression or "").strip()
    if not expression:
        return ""
    groups = []
    for alternative in re.split(r"\s*\bor\b\s*|\s*\|\|\s*", expression, flags=re.I):
        kinds, body = set(), ""
        for clause in re.split(r"\s*\band\b\s*|\s*&&\s*", alternative, flags=re.I):
            if not clause.strip():
                raise ExpressionError(f"empty clause in {expression!r}")
            kind, part = _clause(clause)
            kinds.add(kind)
            body += part
        concrete = kinds - {"*"}
        if len(concrete) > 1:
            raise ExpressionError(f"{alternative.strip()!r} mixes node and edge fields; join them with 'or'")
        if concrete == {"node"} or not concrete:
            node_body = body
            for k, v in _NODE_KEYS.items():
                node_body = node_body.replace(f"[{k} ", f"[{v} ")
            groups.append(f"node{node_body}")
        if concrete == {"edge"} or not concrete:
            groups.append(f"edge{body}")
    return ", ".join(groups)
