"""A graph request's view: collapsed (namespaces/apps, some expanded) and/or focused on an incident.

The API (`GET /api/v1/graph?collapse=&expand=&focus=&hops=`) and the topology page share this one
function, so the page draws exactly what the API serves. The transformations themselves are
topology's (`topology.aggregate`, `topology.focus`); this module only resolves what a request names
(a finding or incident id -> graph elements and blamed objects) and lays the result out as elements.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dashboard.components.find_hide import Alternative, ExpressionError, parse
from dashboard.elements import ui_elements
from dashboard.graph_find import Found, hide, mark_found
from dashboard.highlight import projector
from dashboard.query import DataSource, GraphResult, QueryError
from topology.aggregate import LEVELS, aggregate, is_aggregate_id
from topology.focus import MAX_HOPS, Blamed, focus

DEFAULT_HOPS = 1


@dataclass
class View:
    collapse: str | None = None  # namespace | app | None (everything)
    expand: tuple[str, ...] = ()  # aggregate ids opened in place
    focus: str | None = None  # a finding fingerprint or an incident id
    hops: int = DEFAULT_HOPS
    find: str | None = None  # find/hide expressions (dashboard.components.find_hide), applied to members too
    hide: str | None = None

    @property
    def plain(self) -> bool:
        return not self.collapse and not self.focus


@dataclass
class Shown:
    """The result plus how ids of the full graph map onto it (for highlights and side panels)."""

    result: GraphResult
    group_of: dict[str, str] = field(default_factory=dict)  # full-graph node id -> drawn id (aggregated views)
    seeds: list[str] = field(default_factory=list)  # focus: the incident's elements in the shown graph
    found: Found | None = None  # what `find` matched, inside groups too


def records(elements: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    nodes = [e["data"] for e in elements if "source" not in e["data"]]
    edges = [e["data"] for e in elements if "source" in e["data"]]
    return nodes, edges


def _blamed(f: dict[str, Any], elements: list[str]) -> list[Blamed]:
    out = []
    for ref in [f.get("resource")]:
        if ref and ref.get("kind") and ref.get("name"):
            out.append(Blamed(ref["kind"], ref.get("namespace") or "", ref["name"], ref.get("source") or "",
                              ref.get("path") or "", tuple(elements)))
    return out


def resolve_focus(source: DataSource, focus_id: str) -> tuple[list[str], list[Blamed]]:
    """(workload-graph element ids, blamed objects) of a finding fingerprint or an incident id."""
    f = source.finding(focus_id)
    if f is not None:
        elements = list(f.get("elements") or [])
        return elements, _blamed(f, elements)
    from diagnose.incidents import incidents_of_dicts

    findings = source.findings({})
    incident = next((i for i in incidents_of_dicts(findings, full=False) if i["id"] == focus_id), None)
    if incident is None:
        raise QueryError("focus", f"no finding or incident with id {focus_id[:80]!r}")
    members = {m["fingerprint"] for m in incident["findings"]}
    by_fp = {f["fingerprint"]: f for f in findings if f["fingerprint"] in members}
    seeds: list[str] = []
    blamed: dict[str, Blamed] = {}
    for fp in members:
        found = by_fp.get(fp) or {}
        elements = list(found.get("elements") or [])
        seeds += elements
        for b in _blamed(found, elements):
            prior = blamed.get(b.id)
            blamed[b.id] = b if prior is None else Blamed(b.kind, b.namespace, b.name, b.source, b.path,
                                                            tuple(sorted(set(prior.elements) | set(elements))))
    return sorted(set(seeds)), list(blamed.values())


def _check_expand(nodes: list[dict[str, Any]], expand: tuple[str, ...]) -> None:
    namespaces = {n.get("namespace") for n in nodes}
    for e in expand:
        if not is_aggregate_id(e):
            raise QueryError("expand", f"{e[:80]!r} is not an aggregate id (agg:ns:NAMESPACE or agg:app:NAMESPACE/APP)")
        ns = e.split(":", 2)[2].split("/", 1)[0]
        if ns not in namespaces:
            raise QueryError("expand", f"no namespace {ns[:80]!r} in this graph")


def apply_view(source: DataSource, result: GraphResult, view: View, strict: bool = True) -> Shown:
    """`result` (the full graph) as `view` asks; `strict` refuses expand ids the graph does not have (the API),
    the page ignores them (a namespace can vanish between two refreshes)."""
    if view.plain and not view.find and not view.hide:
        return Shown(result)
    if view.collapse not in (None, *LEVELS):
        raise QueryError("collapse", f"unknown value {view.collapse!r} (known: {', '.join(LEVELS)})")
    if not 0 <= view.hops <= MAX_HOPS:
        raise QueryError("hops", f"must be between 0 and {MAX_HOPS}, got {view.hops}")
    find, hidden = _expression("find", view.find), _expression("hide", view.hide)
    nodes, edges = records(result.elements)
    notes = list(result.notes)
    seeds: list[str] = []
    if hidden:  # before focus and roll-up: what is hidden is not in any group's numbers
        nodes, edges, n_gone, e_gone = hide(nodes, edges, hidden)
        notes.append(f"hide {view.hide[:60]!r}: {n_gone} node(s) and {e_gone} edge(s) left out")
    if view.focus:
        wanted, blamed = resolve_focus(source, view.focus)
        if result.graph_type != "workload":  # findings name workload-graph elements
            mapped = projector(source.graph("workload", None, result.window_s).elements, result.elements,
                               result.graph_type)
            wanted = mapped(wanted)
            blamed = [Blamed(b.kind, b.namespace, b.name, b.source, b.path, tuple(mapped(b.elements))) for b in blamed]
        present = {n["id"] for n in nodes} | {e["id"] for e in edges}
        seeds = [s for s in wanted if s in present]
        focused = focus(nodes, edges, seeds or None, view.hops, blamed)
        nodes, edges = focused.nodes, focused.edges
        what = f"{len(focused.core_edges)} unhealthy edge(s)" if seeds else \
            f"no element of {view.focus[:40]} in this graph: every unhealthy edge ({len(focused.core_edges)})"
        notes.append(f"incident view: {what}, {view.hops} hop(s) around; {focused.hidden_nodes} node(s) and "
                     f"{focused.hidden_edges} edge(s) hidden")
    group_of: dict[str, str] = {}
    members = nodes, edges
    if view.collapse:
        if strict:
            _check_expand(nodes, view.expand)
        rolled = aggregate(nodes, edges, view.collapse, view.expand)
        nodes, edges, group_of = rolled.nodes, rolled.edges, rolled.group_of
        n_agg = sum(1 for n in nodes if n.get("type") == "aggregate")
        notes.append(f"grouped by {view.collapse}: {n_agg} group(s); click one to expand it")
        seeds = sorted({group_of.get(s, s) for s in seeds})
    found = None
    if find:
        found, marks = mark_found(*members, nodes, edges, group_of, find)
        if marks:
            nodes = [{**n, **marks[n["id"]]} if n["id"] in marks else n for n in nodes]
            edges = [{**e, **marks[e["id"]]} if e["id"] in marks else e for e in edges]
        notes.append(found.note(view.find or ""))
    out = GraphResult(ui_elements(nodes, edges), result.graph_type, result.namespaces, result.window_s,
                      result.updated_at, notes)
    return Shown(out, group_of, seeds, found)


def _expression(param: str, text: str | None) -> list[Alternative]:
    try:
        return parse(text or "")
    except ExpressionError as exc:
        raise QueryError(param, str(exc)) from None
