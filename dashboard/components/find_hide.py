"""Find/hide expressions (Kiali-style): Cytoscape selectors for the browser, masks for the server.

`rps > 10 and error >= 5`, `name ~ reviews or health = failing`, `mismatch`, `!mtls`.
Clauses joined by `and` match together; `or` joins alternatives. An expression is parsed once
into clauses; `to_selector` renders them as a selector, so on a plain graph finding or hiding is
pure styling in the browser (no elements rebuilt, which keeps 10,000-node graphs responsive).
A grouped graph hides its workloads inside aggregates, where no selector reaches: there the
server evaluates the same clauses over the graph records (`node_mask`/`edge_mask`, vectorized),
so a find can count members of a collapsed group and a hide can leave them out of its roll-up.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# field -> (element kind, data key, numeric)
FIELDS: dict[str, tuple[str, str, bool]] = {
    "name": ("node", "name", False), "namespace": ("node", "namespace", False), "ns": ("node", "namespace", False),
    "app": ("node", "app", False), "version": ("node", "version", False), "type": ("node", "type", False),
    "node": ("node", "type", False), "rps": ("*", "rps", True), "error": ("*", "error_pct", True),
    "%error": ("*", "error_pct", True), "p95": ("edge", "p95_ms", True), "p99": ("edge", "p99_ms", True),
    "health": ("*", "health", False), "mtls": ("edge", "mtls_state", False), "protocol": ("edge", "protocol", False),
}
_OPS = {"=": "=", "!=": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<=", "~": "*=", "!~": "!*="}
_CLAUSE = re.compile(r"^\s*(%?[a-z0-9]+)\s*(!=|>=|<=|!~|=|>|<|~)\s*(.+?)\s*$", re.I)
# node rps is the inbound rate; `rps` on an edge is the edge rate
_NODE_KEYS = {"rps": "rps_in"}


class ExpressionError(ValueError):
    """Shown under the input box; names the clause that could not be read."""


@dataclass(frozen=True)
class Clause:
    """One test on one data key: `op` is a Cytoscape operator (=, !=, >, >=, <, <=, *=, !*=) or `?` (truthy)."""

    key: str
    op: str
    value: str | float | None = None

    def selector(self, node: bool = False) -> str:
        key = _NODE_KEYS.get(self.key, self.key) if node else self.key
        if self.op == "?":
            return f"[?{key}]"
        if isinstance(self.value, float):
            return f"[{key} {self.op} {self.value:g}]"
        escaped = str(self.value).replace("\\", "\\\\").replace('"', '\\"')
        return f'[{key} {self.op} "{escaped}"]'

    def mask(self, frame: pd.DataFrame, node: bool = False) -> np.ndarray:
        """Which rows match; a row without the key matches no comparison (as in the browser)."""
        key = _NODE_KEYS.get(self.key, self.key) if node else self.key
        if key not in frame:
            return np.zeros(len(frame), dtype=bool)
        col = frame[key]
        if self.op == "?":
            return col.fillna(False).astype(bool).to_numpy()
        if isinstance(self.value, float):
            num = pd.to_numeric(col, errors="coerce")
            present = num.notna().to_numpy()
            compare = {"=": num == self.value, "!=": num != self.value, ">": num > self.value,
                       ">=": num >= self.value, "<": num < self.value, "<=": num <= self.value}[self.op]
            return compare.to_numpy() & present
        text = col.where(col.notna(), None)
        present = text.notna().to_numpy()
        text = text.fillna("").astype(str)
        value = str(self.value)
        if self.op in ("*=", "!*="):
            hit = text.str.contains(value, regex=False).to_numpy()
            return present & (hit if self.op == "*=" else ~hit)
        hit = (text == value).to_numpy()
        return present & (hit if self.op == "=" else ~hit)


def _eq(key: str, value: str, op: str = "=") -> Clause:
    return Clause(key, op, value)


# bare words -> (kind, clauses)
SHORTHANDS: dict[str, tuple[str, tuple[Clause, ...]]] = {
    "healthy": ("*", (_eq("health", "healthy"),)), "degraded": ("*", (_eq("health", "degraded"),)),
    "failing": ("*", (_eq("health", "failing"),)),
    "unhealthy": ("*", (_eq("health", "healthy", "!="), _eq("health", "idle", "!="), _eq("health", "na", "!="))),
    "idle": ("node", (_eq("health", "idle"),)), "mtls": ("edge", (_eq("mtls_state", "none", "!="),)),
    "!mtls": ("edge", (_eq("mtls_state", "none"),)), "mismatch": ("edge", (_eq("mtls_state", "mismatch"),)),
    "outsider": ("node", (Clause("outsider", "?"),)), "service": ("node", (_eq("type", "service"),)),
    "workload": ("node", (_eq("type", "workload"),)), "tcp": ("edge", (_eq("protocol", "tcp"),)),
}


@dataclass(frozen=True)
class Alternative:
    """Clauses that must all hold; `kind` is node, edge or * (either)."""

    kind: str
    clauses: tuple[Clause, ...]

    @property
    def nodes(self) -> bool:
        return self.kind in ("node", "*")

    @property
    def edges(self) -> bool:
        return self.kind in ("edge", "*")


def _clause(text: str) -> tuple[str, tuple[Clause, ...]]:
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
        return kind, (Clause(key, _OPS[op], number),)
    if op in (">", ">=", "<", "<="):
        raise ExpressionError(f"{op} compares numbers; {field} is text")
    return kind, (Clause(key, _OPS[op], value),)


def parse(expression: str) -> list[Alternative]:
    """The alternatives of `expression` (empty: matches nothing); ExpressionError names a bad clause."""
    expression = (expression or "").strip()
    if not expression:
        return []
    out = []
    for alternative in re.split(r"\s*\bor\b\s*|\s*\|\|\s*", expression, flags=re.I):
        kinds: set[str] = set()
        clauses: list[Clause] = []
        for clause in re.split(r"\s*\band\b\s*|\s*&&\s*", alternative, flags=re.I):
            if not clause.strip():
                raise ExpressionError(f"empty clause in {expression!r}")
            kind, parts = _clause(clause)
            kinds.add(kind)
            clauses += parts
        concrete = kinds - {"*"}
        if len(concrete) > 1:
            raise ExpressionError(f"{alternative.strip()!r} mixes node and edge fields; join them with 'or'")
        out.append(Alternative(concrete.pop() if concrete else "*", tuple(clauses)))
    return out


def to_selector(expression: str, members_only: bool = False) -> str:
    """A Cytoscape selector for `expression`; empty expression gives an empty selector.

    `members_only` leaves aggregates (grouped views) out: whether a group matches is decided by its
    members on the server (`found` on the aggregate), not by its own summed numbers.
    """
    groups = []
    for alt in parse(expression):
        if alt.nodes:
            groups.append("node" + "".join(c.selector(node=True) for c in alt.clauses)
                          + ('[type != "aggregate"]' if members_only else ""))
        if alt.edges:
            groups.append("edge" + "".join(c.selector() for c in alt.clauses) + ("[!aggregate]" if members_only else ""))
    return ", ".join(groups)


def frame(records: list[dict[str, Any]], alternatives: list[Alternative], node: bool) -> pd.DataFrame:
    """The columns `alternatives` read, one per key, built column by column (no dict per row)."""
    keys = {_NODE_KEYS.get(c.key, c.key) if node else c.key for a in alternatives for c in a.clauses}
    return pd.DataFrame({k: [r.get(k) for r in records] for k in sorted(keys)}, index=range(len(records)))


def _mask(records: list[dict[str, Any]], alternatives: list[Alternative], node: bool) -> np.ndarray:
    wanted = [a for a in alternatives if (a.nodes if node else a.edges)]
    out = np.zeros(len(records), dtype=bool)
    if not wanted or not records:
        return out
    df = frame(records, wanted, node)
    for alt in wanted:
        hit = np.ones(len(records), dtype=bool)
        for c in alt.clauses:
            hit &= c.mask(df, node)
        out |= hit
    return out


def node_mask(nodes: list[dict[str, Any]], alternatives: list[Alternative]) -> np.ndarray:
    """Which node records match (as the selector would in the browser)."""
    return _mask(nodes, alternatives, node=True)


def edge_mask(edges: list[dict[str, Any]], alternatives: list[Alternative]) -> np.ndarray:
    """Which edge records match (as the selector would in the browser)."""
    return _mask(edges, alternatives, node=False)
