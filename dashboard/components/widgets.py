"""Small shared widgets: navigation, health badges, YAML excerpts, key/value tables.

Every string from the mesh goes into Dash text children (escaped by React);
nothing here uses raw HTML.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from dash import dcc, html

PAGES = [("/", "Overview"), ("/topology", "Topology"), ("/findings", "Findings"), ("/services", "Services"),
         ("/traces", "Traces"), ("/slos", "SLOs"), ("/config", "Config"), ("/changes", "Changes")]


def nav(active: str) -> html.Nav:
    return html.Nav(className="nav", children=[
        html.Span("meshscope", className="brand"),
        *[dcc.Link(title, href=path, className="nav-link active" if path == active else "nav-link")
          for path, title in PAGES]])


def badge(text: str, kind: str | None = None) -> html.Span:
    return html.Span(text, className=f"badge badge-{kind or text}")


def when(epoch: float | None) -> str:
    if not epoch:
        return ""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def kv_table(items: dict[str, Any], cls: str = "kv") -> html.Table:
    """Keys and values; a list of records (evidence edges) becomes a nested table, the rest JSON text."""
    def show(v: Any) -> Any:
        if isinstance(v, str):
            return v
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            return records_table(v)
        return json.dumps(v, default=str)
    return html.Table(className=cls, children=[html.Tbody([
        html.Tr([html.Th(str(k)), html.Td(show(v))]) for k, v in items.items()])])


def records_table(rows: list[dict[str, Any]], limit: int = 20) -> html.Table:
    columns = list(dict.fromkeys(k for r in rows[:limit] for k in r))
    def cell(v: Any) -> str:
        return v if isinstance(v, str) else json.dumps(v, default=str)
    return html.Table(className="grid records", children=[
        html.Thead(html.Tr([html.Th(c) for c in columns])),
        html.Tbody([html.Tr([html.Td(cell(r.get(c, ""))) for c in columns]) for r in rows[:limit]]),
        html.Caption(f"{len(rows) - limit} more not shown") if len(rows) > limit else None])


def yaml_excerpt(excerpt: dict[str, Any]) -> html.Div:
    """A YAML document with line numbers and the offending path's line marked."""
    marked = set(excerpt.get("highlight") or [])
    return html.Div(className="yaml-excerpt", children=[
        html.Div([html.Strong(excerpt.get("ref", "")), html.Span(f"  {excerpt.get('source') or ''}", className="muted"),
                  html.Span(f"  path: {excerpt['path']}", className="muted") if excerpt.get("path") else None]),
        html.Pre(className="yaml", children=[
            html.Span(f"{no:>4}  {text}", className="yaml-line hl" if no in marked else "yaml-line")
            for no, text in excerpt.get("lines", [])])])


def finding_detail(f: dict[str, Any]) -> html.Div:
    """Message, evidence, related config with the path highlighted, remediation, link to the graph."""
    res = f.get("resource") or {}
    return html.Div(className="finding-detail", id="finding-detail-body", children=[
        html.H3([badge(f.get("severity", "")), " ", f.get("code", ""), " ", html.Span(f.get("category", ""), className="muted")]),
        html.P(f.get("message", ""), className="finding-message"),
        html.Div([html.Strong("Resource: "), f"{res.get('kind', '')} {res.get('namespace') or ''}/{res.get('name', '')}",
                  html.Span(f"  ({res['source']})", className="muted") if res.get("source") else None]) if res else None,
        html.H4("Evidence") if f.get("evidence") else None,
        kv_table(f["evidence"]) if f.get("evidence") else None,
        html.P(["Sample traces: ", *[dcc.Link(t[:16], href=f"/traces?trace={_q(t)}", className="trace-link")
                                     for t in (f.get("evidence") or {}).get("sample_trace_ids", [])]])
        if (f.get("evidence") or {}).get("sample_trace_ids") else None,
        html.H4("Impact") if f.get("impact") else None,
        kv_table(f["impact"]) if f.get("impact") else None,
        html.H4("Related config") if f.get("yaml_excerpts") else None,
        *[yaml_excerpt(x) for x in f.get("yaml_excerpts", [])],
        *changes_before(f),
        html.H4("Remediation") if f.get("remediation") else None,
        html.P(f.get("remediation", "")) if f.get("remediation") else None,
        html.Div([html.P("Or roll the change back (apply this):", className="muted"),
                  html.Pre(f["rollback_yaml"], className="yaml rollback-yaml")], id="finding-rollback")
        if f.get("rollback_yaml") else None,
        html.P(["Equivalent checks: ", ", ".join(f["equivalents"])], className="muted") if f.get("equivalents") else None,
        dcc.Link("Show on graph", href=f"/topology?highlight={_q(f.get('fingerprint', ''))}", className="button",
                 id="finding-show-on-graph") if f.get("elements") else None,
        # the incident view: only the unhealthy edges around it and the blamed object (issue #17)
        dcc.Link("Focus", href=f"/topology?focus={_q(f.get('fingerprint', ''))}", className="button",
                 id="finding-focus") if f.get("fingerprint") else None,
    ])


def changes_before(f: dict[str, Any]) -> list[Any]:
    """The config changes before the finding's onset, most likely cause first (diagnose.changes)."""
    if not f.get("changes"):
        return []
    return [html.H4("What changed before it"),
            html.Ul(id="finding-changes", children=[
                html.Li([html.Span(c.get("sentence", "")), html.Span(f"  [{c.get('relation', '')}: {c.get('why', '')}]",
                                                                     className="muted")],
                        className="change likely" if c.get("likely_cause") else "change")
                for c in f["changes"]])]


def _q(s: str) -> str:
    from urllib.parse import quote
    return quote(s, safe="")
