"""One self-contained HTML file: inline CSS, inline SVG pictures, no scripts and no network references.

Jinja2 autoescaping escapes every string from the snapshot (service names,
paths, messages); the SVG pieces are built with explicit escaping and marked
safe here, the only place markup is trusted.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from diagnose.reports import view
from diagnose.reports.charts import budget_chart_svg
from diagnose.reports.graph_svg import MAX_NODES, topology_svg
from diagnose.reports.snapshot import SCHEMA_VERSION, Snapshot


@lru_cache(maxsize=2)
def template(name: str = "report.html.j2") -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template(name)


def report_context(snapshot: Snapshot, max_graph_nodes: int = MAX_NODES) -> dict[str, Any]:
    """What both templates (screen HTML and the PDF's print HTML) lay out, computed once by `view`."""
    svg, note = topology_svg(snapshot.graph, max_graph_nodes)
    return dict(
        s=snapshot,
        schema=SCHEMA_VERSION,
        findings=view.ranked_findings(snapshot),
        incidents=view.incidents(snapshot),
        before_after=view.before_after(snapshot),
        slos=view.slo_rows(snapshot),
        nodes=view.node_rows(snapshot),
        sev=view.severity_counts(snapshot.findings),
        colors=view.HEALTH_COLORS,
        topology_svg=Markup(svg),
        topology_note=note,
        budget_chart=lambda series, title="": Markup(budget_chart_svg(series, title=title)),
        when=view.when,
        duration=view.duration,
        rate=view.rate,
        percent=view.percent,
        resource_label=view.resource_label,
        impact_text=view.impact_text,
        scalar_evidence=view.scalar_evidence,
        table_evidence=view.table_evidence,
    )


def render_html(snapshot: Snapshot, max_graph_nodes: int = MAX_NODES) -> str:
    return template().render(**report_context(snapshot, max_graph_nodes))
