"""Config: the Istio objects in the mesh with their findings; the selected object's YAML, offending lines marked."""
from __future__ import annotations

from typing import Any

from dash import Input, Output, dash_table, html, no_update

from dashboard.components.widgets import yaml_excerpt
from dashboard.query import DataSource

PATH = "/config"
TITLE = "Config"


def _rows(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": f"{o['kind']}|{o.get('namespace') or ''}|{o['name']}", "kind": o["kind"],
             "namespace": o.get("namespace") or "", "name": o["name"], "source": o.get("source") or "",
             "findings": ", ".join(o.get("findings") or []) or "-"} for o in objects]


def layout(source: DataSource, ctx: Any, query: dict[str, str]) -> html.Div:
    objects = source.config_objects()
    return html.Div(className="config", children=[
        html.H2("Config"),
        dash_table.DataTable(id="cfg-table", columns=[{"id": c, "name": c.capitalize()} for c in
                                                      ("kind", "namespace", "name", "source", "findings")],
                             data=_rows(objects), sort_action="native", filter_action="native", page_size=25,
                             style_cell={"textAlign": "left", "fontSize": 13}),
        html.Div(id="cfg-detail", className="detail",
                 children=html.P("Select an object to see its YAML.", className="muted")),
    ])


def register(app: Any, source: DataSource, ctx: Any) -> None:
    @app.callback(Output("cfg-detail", "children"), Input("cfg-table", "active_cell"), prevent_initial_call=True)
    def show(active):  # noqa: ANN001, ANN202
        if not active or not active.get("row_id"):
            return no_update
        kind, ns, name = active["row_id"].split("|", 2)
        obj = next((o for o in source.config_objects()
                    if (o["kind"], o.get("namespace") or "", o["name"]) == (kind, ns, name)), None)
        if obj is None:
            return html.P("That object is gone.", className="muted")
        return yaml_excerpt({"ref": f"{kind} {ns}/{name}", "source": obj.get("source"),
                             "lines": [[i + 1, t] for i, t in enumerate(obj.get("yaml", "").splitlines())],
                             "highlight": obj.get("highlight", [])})
