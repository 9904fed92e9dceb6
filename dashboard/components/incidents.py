"""The incident list the Overview and the Findings page lead with: root cause first, then its findings.

Dash escapes every string child, so messages and object names from the mesh are shown as text, never markup.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from dash import dcc, html

from dashboard.components.widgets import badge
from dashboard.query import DataSource
from diagnose.incidents import incidents_of_dicts

INCIDENTS_SHOWN = 20  # incidents a list shows (the largest first: the order they come in)
MEMBERS_SHOWN = 10  # findings shown under one incident's root finding


def open_incidents(source: DataSource, findings: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Open incidents from the source's open findings (pass them when already read)."""
    return incidents_of_dicts(findings if findings is not None else source.findings({"status": "open"}))


def _finding_link(f: dict[str, Any]) -> dcc.Link:
    return dcc.Link(f["code"], href=f"/findings?fp={quote(f['fingerprint'], safe='')}")


def incident_list(incidents: list[dict[str, Any]], limit: int | None = INCIDENTS_SHOWN,
                  list_id: str = "incidents") -> Any:
    """An ordered list: per incident its severity, root finding, blamed object (file:line), impact, members.

    Bounded whatever the mesh: the first `limit` incidents and the first MEMBERS_SHOWN findings of each, then
    how many more there are. Every item is a handful of React components; 5,000 findings listed in full were
    29,000 DOM nodes and a 16 s main-thread task on the Findings page (the tab frozen), and one incident with
    thousands of findings does the same on the Overview. The table below the list holds every finding.
    """
    if not incidents:
        return html.P("No open incidents.", className="muted", id=list_id)
    items = []
    shown = incidents[:limit] if limit is not None else incidents
    for inc in shown:
        root = inc["findings"][0]
        cause = inc.get("cause") or {}
        imp = inc.get("impact") or {}
        where = cause.get("label", "") + (f" {cause['path']}" if cause.get("path") else "")
        facts = [f"{imp.get('rps', 0):.2f} req/s hurt" if imp.get("rps") else None,
                 f"{len(imp.get('edges') or [])} edge(s)" if imp.get("edges") else None,
                 f"SLOs {', '.join(imp['slos'])}" if imp.get("slos") else None]
        members = inc["findings"][1:]
        items.append(html.Li(className=f"incident incident-{inc['severity']}", children=[
            badge(inc["severity"]), " ", _finding_link(root), " ", html.Strong(where or "unknown object"), " ",
            dcc.Link("Focus", href=f"/topology?focus={quote(inc['id'], safe='')}", className="focus-link"),
            html.Span(f"  {cause['source']}", className="muted") if cause.get("source") else None,
            html.Div(root["message"], className="incident-message"),
            html.Div("; ".join(x for x in facts if x), className="muted") if any(facts) else None,
            html.Ul(className="incident-members", children=[
                *[html.Li([html.Span(m.get("role") or "", className="muted"), " ", _finding_link(m), " ", m["message"]])
                  for m in members[:MEMBERS_SHOWN]],
                *([html.Li(f"\u2026 and {len(members) - MEMBERS_SHOWN} more findings of this incident",
                           className="muted incident-more")] if len(members) > MEMBERS_SHOWN else [])])
            if members else None,
        ]))
    rest = len(incidents) - len(shown)
    if rest:
        items.append(html.Li(f"{rest} more open incident{'s' * (rest != 1)} not listed here; every finding is in "
                             "the Findings table.", className="muted incidents-more"))
    return html.Ol(items, id=list_id, className="incidents")
