"""Config: the Istio objects in the mesh with their findings; the selected object's YAML, offending lines marked."""
from __future__ import annotations

from typing import Any

from dash import Input, Output, State, dash_table, dcc, html, no_update

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
        _preview_box(),
        *dry_run_section(source),
    ])


def dry_run_section(source: DataSource, window_s: float = 600.0) -> list[Any]:
    """Dry-run AuthorizationPolicies: shadow denials per workload beside the window's predicted denials."""
    backend = getattr(source, "backend", None)
    if backend is None or not hasattr(backend, "snapshot") or not hasattr(backend, "rates"):
        return []
    from dashboard.api.dryrun import dry_run_report

    try:
        got = dry_run_report(backend, window_s)
    except Exception as exc:  # noqa: BLE001 - the rest of the page still works
        return [html.H3("Dry-run policies"), html.P(f"dry-run results unavailable: {exc}", className="muted")]
    if not got["policies"]:
        return []
    rows = []
    for p in got["policies"]:
        shadow = p["shadow"]
        seen = ("not readable" if shadow is None else
                ", ".join(f"{wl}: {c['denied']:.0f} denied / {c['allowed']:.0f} allowed" for wl, c in shadow.items())
                or "no shadow decisions yet")
        would = ", ".join(f"{e['source']} -> {e['destination']} {e['rps']:.3g} rps" + ("" if e["certain"] else " (at risk)")
                          for e in p["predicted"]) or "nothing in the window"
        rows.append(html.Tr([html.Td(p["policy"]), html.Td(p["action"]), html.Td(seen), html.Td(would)]))
    return [html.H3("Dry-run policies"), html.P(f"Shadow decisions: {got['shadow_note']}. Predicted: the last "
                                                f"{window_s / 60:.0f} min of traffic replayed with the policy enforced.",
                                                className="muted"),
            html.Table(className="grid", id="cfg-dryrun", children=[
                html.Thead(html.Tr([html.Th(h) for h in ("Policy", "Action", "Shadow decisions (since sidecar start)",
                                                         "Would deny once enforced")])),
                html.Tbody(rows)])]


def _preview_box() -> html.Div:
    """Paste proposed YAML; see what the last window's traffic says it would break (nothing is applied)."""
    return html.Div(className="config-preview", children=[
        html.H3("Preview a change"),
        html.P("Proposed objects are laid over the live config (objects named under Delete are taken out of it) "
               "and the window's traffic is replayed edge by edge; nothing is applied.", className="muted"),
        dcc.Textarea(id="cfg-preview-yaml", placeholder="apiVersion: security.istio.io/v1\nkind: PeerAuthentication ...",
                     style={"width": "100%", "height": "10em", "fontFamily": "monospace"}),
        html.Label(["Delete ", dcc.Input(id="cfg-preview-delete", value="", type="text", size="48",
                                         placeholder="Kind/namespace/name, comma-separated (e.g. DestinationRule/bookinfo/reviews)")]),
        html.Label(["Window ", dcc.Input(id="cfg-preview-window", value="1h", type="text", size="6")]),
        html.Button("Predict impact", id="cfg-preview-run", n_clicks=0),
        html.Div(id="cfg-preview-result"),
    ])


def preview_result(d: dict[str, Any]) -> html.Div:
    """The impact answer as text nodes (Dash escapes them: YAML and names are untrusted)."""
    if not d["predicted"]:
        return html.Div(className="preview-bad", children=[
            html.P("The proposed change does not load; no prediction was made."),
            html.Ul([html.Li(f"{f['code']} {f['message']}") for f in d["findings"]])])
    head = (f"{d['broken_rps']:.2f} req/s would newly fail, {d['at_risk_rps'] - d['broken_rps']:.2f} req/s more "
            f"at risk, over {d['edges']} edges ({d['total_rps']:.2f} req/s) in the last {d['window_s']:g}s")
    rows = [html.Tr([html.Td(f["code"]), html.Td(f["severity"]), html.Td(f["message"]),
                     html.Td(f"{(f.get('resource') or {}).get('kind', '')} {(f.get('resource') or {}).get('name', '')} "
                             f"{(f.get('resource') or {}).get('path') or ''}".strip())])
            for f in d["edge_findings"]]
    rows += [html.Tr([html.Td(f["code"]), html.Td(f["severity"]), html.Td(f"(config) {f['message']}"), html.Td("")])
             for f in d["findings"]]
    children: list[Any] = [html.P(("BREAKS: " if d["breaks"] else "OK: ") + head,
                                  className="preview-breaks" if d["breaks"] else "preview-ok")]
    children += [html.P(f"Deleting {x['label']}: the live config without it was replayed.", className="preview-deleted")
                 for x in d.get("deleted") or []]
    if d["no_traffic"]:
        children.append(html.P("No traffic in the window: no edge could be judged.", className="muted"))
    if rows:
        children.append(html.Table(className="preview-table", children=[
            html.Thead(html.Tr([html.Th("Code"), html.Th("Severity"), html.Th("What"), html.Th("Rule")])),
            html.Tbody(rows)]))
    return html.Div(id="cfg-preview-answer", children=children)


def register(app: Any, source: DataSource, ctx: Any) -> None:
    @app.callback(Output("cfg-preview-result", "children"), Input("cfg-preview-run", "n_clicks"),
                  State("cfg-preview-yaml", "value"), State("cfg-preview-window", "value"),
                  State("cfg-preview-delete", "value"), prevent_initial_call=True)
    def preview(n, text, window, delete=None):  # noqa: ANN001, ANN202
        from dashboard.api.impact import predict_for
        from dashboard.query import Unavailable
        from diagnose.whatif.run import parse_window

        if not n:
            return no_update
        refs = [r.strip() for r in str(delete or "").replace("\n", ",").split(",") if r.strip()]
        if not (text or "").strip() and not refs:
            return html.P("Paste the proposed YAML first (or name objects to delete).", className="muted")
        try:
            files = [("preview", text)] if (text or "").strip() else []
            return preview_result(predict_for(source, files, parse_window(window or "1h"), delete=refs))
        except ValueError as exc:
            return html.P(str(exc), className="preview-bad")
        except Unavailable as exc:
            return html.P(str(exc), className="muted")

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
