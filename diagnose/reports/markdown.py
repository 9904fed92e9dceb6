"""Markdown that pastes into a ticket: summary, ranked findings with evidence and fixes, SLOs, inventory.

Table cells are escaped (pipes, newlines, backticks, angle brackets, link and
image brackets, bare-URL autolinks, block markers at a line's start) so a
service name, path or message cannot break the table or put a link, an image
or HTML into the ticket where the tracker renders Markdown.
"""
from __future__ import annotations

import re
from typing import Any

from diagnose.reports import view
from diagnose.reports import elements as E
from diagnose.reports.graph_svg import node_label, to_graph
from diagnose.reports.snapshot import Snapshot
from diagnose.terminal_text import terminal_safe

DETAILS_LIMIT = 50  # findings with a full evidence section; the table lists them all


# what makes a link, an image or code in CommonMark/GFM ('(' and '!' mean nothing without '['); a backslash
# makes each literal
_INLINE = re.compile(r"([\\`|\[\]])")
_AUTOLINK = re.compile(r"(?i)(?<=www)\.|:(?=//)")  # GFM links bare `www.x` and `scheme://x` by themselves
_BLOCK_START = re.compile(r"[#+=>-]|\d{1,9}(?=[.)])")  # a heading, list, quote or rule if a line began with it


def cell(value: Any) -> str:
    """Text that renders as itself inline (a table cell, after a list marker): never a link, image, HTML or code."""
    text = "" if value is None else str(value)
    text = text.replace("\r", " ").replace("\n", " ").strip()
    text = _INLINE.sub(r"\\\1", text)
    text = _AUTOLINK.sub(lambda m: "\\" + m.group(0), text)
    return text.replace("<", "&lt;").replace(">", "&gt;") or "-"


def paragraph(value: Any) -> str:
    """`cell`, for a line of its own: nor a heading, list item or quote ("1. x" -> "1\\. x", "# x" -> "\\# x")."""
    text = cell(value)
    m = _BLOCK_START.match(text)
    if not m:
        return text
    return text[:m.end()] + "\\" + text[m.end():] if m.group(0)[0].isdigit() else "\\" + text


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(cell(h) for h in head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return out + [""]


def render_markdown(snapshot: Snapshot) -> str:
    s = snapshot
    findings = view.ranked_findings(s)
    sev = view.severity_counts(s.findings)
    slos = view.slo_rows(s)
    out = [f"# {cell(s.title)}", "",
           f"Generated {view.when(s.generated_at)} from {cell(s.source)}. "
           f"Window: {view.when(s.window.start)} → {view.when(s.window.end)} ({view.duration(s.window.seconds)}).", "",
           "## Mesh summary", ""]
    out += _table(["Namespaces", "Services", "Workloads", "Request rate", "5xx share", "Findings (error/warning/info)", "SLOs alerting"], [[
        len(s.mesh.namespaces), s.mesh.services, s.mesh.workloads, view.rate(s.mesh.requests_per_second),
        view.percent(s.mesh.error_rate), f"{sev['error']}/{sev['warning']}/{sev['info']}",
        f"{sum(1 for o in slos if o['alert'] in ('page', 'ticket'))}/{len(slos)}"]])
    if s.mesh.health:
        out += ["Node health: " + ", ".join(f"{cell(k)} {v}" for k, v in s.mesh.health.items()), ""]

    g = to_graph(s.graph)
    unhealthy = [(a, b, d) for a, b, d in g.edges(data=True) if E.health(d) in ("degraded", "failing")]
    out += ["## Topology", "", f"{g.number_of_nodes()} nodes, {g.number_of_edges()} edges; {len(unhealthy)} unhealthy edges"
            + (" (see the HTML or PDF report for the picture)." if g.number_of_nodes() else "."), ""]
    if unhealthy:
        unhealthy.sort(key=lambda e: -E.error_rate(e[2]))
        out += _table(["Source", "Destination", "Health", "Rate", "Errors"], [
            [node_label(g.nodes[a]), node_label(g.nodes[b]), E.health(d), view.rate(E.request_rate(d)), view.percent(E.error_rate(d), 1)] for a, b, d in unhealthy[:30]])

    ba = view.before_after(s)
    if ba:
        sm = ba["summary"]
        out += ["## Before/after", "", f"The window ending {ba['before_end']} compared with the one ending "
                f"{ba['after_end']} ({ba['window']} each): {sm.get('appeared', 0)} edge(s) appeared, "
                f"{sm.get('vanished', 0)} vanished, {sm.get('changed', 0)} changed, {sm.get('same', 0)} the same.", ""]
        if ba["edges"]:
            out += _table(["Edge", "Status", "What moved"], [[e["edge"], e["status"], e["moved"]] for e in ba["edges"]])
        out += [f"Config changes between ({len(ba['changes'])}):", ""]
        out += _table(["Time", "Op", "Object", "What", "By"], [[c["time"], c["op"], c["object"], c["what"], c["who"]]
                                                              for c in ba["changes"]]) if ba["changes"] else \
            ["No config change between the two windows.", ""]

    incidents = view.incidents(s)
    out += [f"## Incidents ({len(incidents)})", ""]
    if incidents:
        out += _table(["#", "Severity", "Root cause", "Object", "Source", "Impact", "Findings"], [
            [i, inc["severity"], f"{inc['findings'][0]['code']} {inc['findings'][0]['message']}",
             ((inc.get("cause") or {}).get("label") or "-") + (f" {inc['cause']['path']}" if (inc.get("cause") or {}).get("path") else ""),
             (inc.get("cause") or {}).get("source"),
             f"{view.rate(inc['impact']['rps'])} hurt on {len(inc['impact']['edges'])} edge(s)" if inc["impact"].get("rps") else "-",
             ", ".join(f"{m.get('role')} {m['code']}" for m in inc["findings"][1:]) or "-"]
            for i, inc in enumerate(incidents, 1)])
    else:
        out += ["No open incidents.", ""]

    out += [f"## Findings, ranked by impact ({len(findings)})", ""]
    if findings:
        out += _table(["#", "Severity", "Code", "Resource", "Impact", "Message"], [
            [i, f.get("severity"), f.get("code"), view.resource_label(f.get("resource")), view.impact_text(f), f.get("message")]
            for i, f in enumerate(findings, 1)])
        for i, f in enumerate(findings[:DETAILS_LIMIT], 1):
            r = f.get("resource") or {}
            out += [f"### {i}. {cell(f.get('code'))} {cell(view.resource_label(r))}", "", paragraph(f.get("message")), ""]
            if r.get("source"):
                out += [f"- Source: `{cell(r.get('source'))}`" + (f", field `{cell(r.get('path'))}`" if r.get("path") else "")]
            if f.get("impact"):
                out += [f"- Impact: {cell(view.impact_text(f))}"]
            for k, v in view.scalar_evidence(f.get("evidence") or {}):
                if k != "rollback_yaml":  # a YAML document: its own block below
                    out += [f"- {cell(k)}: {cell(v)}"]
            if f.get("remediation"):
                out += [f"- **Remediation:** {cell(f.get('remediation'))}"]
            out += [""]
            if isinstance((f.get("evidence") or {}).get("rollback_yaml"), str):  # a canary to roll back (MS5010)
                text = f["evidence"]["rollback_yaml"].replace("`", "'").rstrip()  # no fence can end early
                out += ["Rollback:", "", "```yaml", text, "```", ""]
            for name, cols, rows in view.table_evidence(f.get("evidence") or {}, limit=5):
                out += [f"{cell(name)}:", ""] + _table(cols, rows)
        if len(findings) > DETAILS_LIMIT:
            out += [f"_Details for the top {DETAILS_LIMIT} findings; the JSON report has all {len(findings)}._", ""]
    else:
        out += ["No findings in this window.", ""]

    out += [f"## SLO status ({len(slos)})", ""]
    if slos:
        windows = list(dict.fromkeys(w for o in slos for w in o["burn_rates"]))
        out += _table(["SLO", "Service", "Objective", "Budget remaining", "Alert", *[f"burn {w}" for w in windows]], [
            [o["name"], o["service"], o["objective"], o["budget_text"], o["alert"], *[o["burn_rates"].get(w, "-") for w in windows]]
            for o in slos])
    else:
        out += ["No SLOs declared.", ""]

    out += [f"## Config inventory ({len(s.inventory)})", ""]
    if s.inventory:
        out += _table(["Kind", "Namespace", "Name", "Source", "Findings"], [
            [o.get("kind"), o.get("namespace"), o.get("name"), o.get("source"), o.get("findings", 0)] for o in s.inventory])
    else:
        out += ["No config objects.", ""]
    # every line is escaped Markdown already; control characters (ANSI escapes, bidi overrides) in quoted names
    # are shown as escapes too, for the file read in a terminal or `meshscope report -o -` printed to one
    return terminal_safe("\n".join(out).rstrip(), keep_newlines=True) + "\n"
