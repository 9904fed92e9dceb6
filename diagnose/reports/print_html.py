"""The HTML that WeasyPrint turns into the PDF: the same report context as the screen HTML, laid out cheaply.

WeasyPrint spends its time per box: a 1,000-service report as the screen HTML (a box per table
cell, a block per finding field) took about 40 s of CPU here. Here the long tables are monospace
text (`texttable`) and each finding one text block, so the PDF keeps every row for a sixth of that.
"""
from __future__ import annotations

from typing import Any

from markupsafe import Markup

from diagnose.reports import view
from diagnose.reports.graph_svg import MAX_NODES
from diagnose.reports.html import report_context, template
from diagnose.reports.snapshot import Snapshot
from diagnose.reports.texttable import Column, text_table

TEXT_WIDTH = 114  # characters of 7.5 pt DejaVu Sans Mono across A4 between 12 mm margins (~527 pt)


def _unhealthy(v: str) -> str | None:
    """Failing and degraded rows in their colour; the healthy majority stays plain text."""
    return f"h-{v}" if v in ("failing", "degraded") else None


def _markup(table: tuple[str, str]) -> tuple[Markup, Markup]:
    return Markup(table[0]), Markup(table[1])  # text_table escaped every value


def evidence_records(ev: dict[str, Any]) -> list[str]:
    """Evidence lists of records (e.g. hurt edges), one line each: `edges: source a, destination b, count 3`.
    Lines read in a proportional font, so a finding stays one cheap text block without a table."""
    return [f"{name}: " + ", ".join(f"{c} {v}" for c, v in zip(cols, row) if v != "")
            for name, cols, rows in view.table_evidence(ev) for row in rows]


def print_tables(ctx: dict[str, Any]) -> dict[str, Any]:
    """The services, findings and inventory tables as text, plus the evidence-record lines."""
    nodes = [[n["health"], n["type"], n["namespace"], n["name"], n["rps"], n["errors"]] for n in ctx["nodes"]]
    # the message is in each finding's block right below: the table stays one line per finding to scan
    findings = [[i, f.get("severity"), f.get("code"), view.resource_label(f.get("resource")), view.impact_text(f)]
                for i, f in enumerate(ctx["findings"], 1)]
    inventory = [[o.get("kind"), o.get("namespace"), o.get("name"), o.get("source"), o.get("findings") or 0]
                 for o in ctx["s"].inventory]
    return {
        "nodes_table": _markup(text_table(
            [Column("Health"), Column("Type"), Column("Namespace", 9), Column("Name", 16),
             Column("Inbound", right=True), Column("5xx", right=True)], nodes, TEXT_WIDTH, row_class=lambda r: _unhealthy(r[0]))),
        "findings_table": _markup(text_table(
            [Column("#", 1, right=True), Column("Severity"), Column("Code"), Column("Resource", 16),
             Column("Impact", 12)], findings, TEXT_WIDTH)),
        "inventory_table": _markup(text_table(
            [Column("Kind"), Column("Namespace", 9), Column("Name", 16), Column("Source", 16), Column("Findings", right=True)],
            inventory, TEXT_WIDTH)),
        "evidence_records": evidence_records,
    }


def render_print_html(snapshot: Snapshot, max_graph_nodes: int = MAX_NODES) -> str:
    ctx = report_context(snapshot, max_graph_nodes)
    ctx.update(print_tables(ctx))
    return template("report.print.j2").render(**ctx)
