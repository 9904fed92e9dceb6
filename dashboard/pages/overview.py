"""Overview: namespaces and services with health, top findings, SLO status, and the scenario switch."""
from __future__ import annotations

from collections import defaultdict
from typing import Any
from urllib.parse import quote, urlencode

from dash import Input, Output, State, dcc, html, no_update

from dashboard.components.as_of import as_of, banner, earlier_episode, findings_at, links, services_at, window_of
from dashboard.components.incidents import incident_list, open_incidents
from dashboard.components.ingest_rejects import rejects_section
from dashboard.components.widgets import badge, when
from dashboard.components.slo_format import ALERT_BADGE, alert_text, budget_text
from dashboard.query import DataSource, Unavailable

PATH = "/"
TITLE = "Overview"
WINDOW_S = 60.0  # the services' numbers: the last minute unless ?window= says
SERVICES_SHOWN = 12  # services listed under one namespace (the rest linked on the Services page)
NAMESPACES_SHOWN = 40  # namespaces listed


def layout(source: DataSource, ctx: Any, query: dict[str, str]) -> html.Div:
    now = source.now()
    at = as_of(query, now, source)  # ?end=: the page as it was then (time travel, issue #14)
    window = window_of(query, WINDOW_S, source)  # ?window=: the services' traffic over this length
    services = services_at(source, at, window)
    by_ns: dict[str, list] = defaultdict(list)
    for s in services:
        by_ns[s["namespace"]].append(s)
    everything = source.findings({}) if at.past else []  # open and resolved: which were open then
    incidents = None
    if at.past:
        findings = findings_at(everything, at.end)
    elif hasattr(source, "open_findings_and_incidents"):  # a live source groups them once per state
        findings, incidents = source.open_findings_and_incidents()
    else:
        findings = source.findings({"status": "open"})
    counts = {sev: sum(f["severity"] == sev for f in findings) for sev in ("error", "warning", "info")}
    slos = source.slos(end=at.end) if at.past else source.slos()
    scenarios = [] if at.past else source.scenarios()  # the switch acts on now: not offered on a past view
    notices = getattr(source, "notices", lambda: [])()  # optional: backends that can warn about their inputs
    return html.Div(className="overview", children=[
        html.H2("Overview"),
        banner(PATH, query, at),
        html.P(["Data as of ", html.Span(when(at.end or now), id="ov-asof"),
                f"; traffic over the {_span(window.seconds)} before"], className="muted"),
        links(PATH, query, at, now, window=window),
        html.Div(id="ov-notices", className="notices", children=[html.P(["⚠ ", n], className="notice warning")
                                                                  for n in notices]) if notices else None,
        html.Div(className="cards", children=[
            html.Div(className=f"card card-{sev}", children=[html.Div(str(n), className="card-number"),
                                                             html.Div(f"open {sev}s")]) for sev, n in counts.items()]),
        _scenario_switch(scenarios) if scenarios else None,
        html.Section(className="ov-incidents", children=[  # one row per problem, its cause first
            html.H3("Incidents"), incident_list(open_incidents(source, findings) if incidents is None else incidents, limit=5, list_id="ov-incidents")]),
        html.Div(className="columns", children=[
            html.Section(id="ov-namespaces", children=[html.H3("Namespaces and services"), *_namespaces(by_ns)]),
            html.Section([html.H3("Top findings"), html.Ol(id="ov-findings", children=[
                html.Li([badge(f["severity"]), " ", dcc.Link(f["code"], href=f"/findings?fp={quote(f['fingerprint'], safe='')}"),
                         " ", f["message"]]) for f in findings[:5]]) if findings else html.P("No open findings.")]),
            html.Section([html.H3("SLOs"), html.Ul([
                html.Li([badge(alert_text(s), ALERT_BADGE.get(s.get("alert"), "na")), " ",
                         dcc.Link(s["name"], href="/slos"),
                         html.Span(f"  budget left {budget_text(s)}", className="muted")])
                for s in slos]) if slos else html.P("No SLOs declared.", className="muted")]),
        ]),
        _past_note(everything, findings, at.end) if at.past else rejects_section(),  # refusal counters: now only
        html.P(["Download a report: ", *[x for fmt, label in (("html", "HTML"), ("pdf", "PDF"), ("md", "Markdown"),
                                                              ("json", "JSON"))
                                         for x in (html.A(label, href=f"/api/v1/report?format={fmt}",
                                                          className="report-link"), " ")]],
               className="muted", id="ov-reports"),
    ])


def _span(seconds: float) -> str:
    from diagnose.slo import format_duration
    return format_duration(seconds)


def _past_note(everything: list[dict[str, Any]], shown: list[dict[str, Any]], end: float) -> html.P | None:
    """What a past view cannot say: findings reopened since whose recorded episodes do not reach back that far."""
    open_then = {f["fingerprint"] for f in shown}
    unsure = [f for f in everything if earlier_episode(f, end) and f["fingerprint"] not in open_then]
    if not unsure:
        return None
    return html.P(f"{len(unsure)} finding(s) first seen before this instant came back later and their episodes "
                  f"recorded do not reach back to it: state then unknown ({', '.join(f['code'] for f in unsure[:5])}).",
                  className="muted", id="ov-unsure")


def _traffic_text(s: dict[str, Any]) -> str:
    """Whose requests the numbers are: calls into the service, or what a pure source (a gateway) sends."""
    if not s.get("rps") and s.get("rps_out"):
        return f"  sends {s['rps_out']:.1f} rps (nothing calls it)"
    text = f"  in: {s['rps']:.1f} rps, {s['error_pct']:.1f}% errors"
    reason = s.get("health_reason") or ""
    if reason.startswith("outbound"):
        text += f"; {s['health']} on its outbound calls: {reason.removeprefix('outbound ')}"
    return text


_RANK = {"failing": 4, "degraded": 3, "healthy": 2, "idle": 1, "na": 0}


def _namespaces(by_ns: dict[str, list[dict[str, Any]]]) -> list[Any]:
    """One block per namespace: its worst health and its services, bounded whatever the mesh.

    Every service of every namespace was listed: 10,000 services made the Overview 40,000 DOM nodes and one
    main-thread task of 4.9 s (load 7). A namespace shows at most SERVICES_SHOWN services, the least healthy first
    when it has more (a failing one is never the one left out), and links the rest on the Services page; at most
    NAMESPACES_SHOWN namespaces are listed, the least healthy first when there are more."""
    def rank(s: dict[str, Any]) -> tuple:
        return (-_RANK.get(s.get("health", "na"), 0), s["name"])
    names = sorted(by_ns)
    if len(names) > NAMESPACES_SHOWN:
        names = sorted(names, key=lambda ns: (min(rank(s) for s in by_ns[ns])[0], ns))[:NAMESPACES_SHOWN]
        names.sort()
    blocks: list[Any] = []
    for ns in names:
        items = by_ns[ns]
        shown = sorted(items, key=lambda s: s["name"]) if len(items) <= SERVICES_SHOWN else \
            sorted(sorted(items, key=rank)[:SERVICES_SHOWN], key=lambda s: s["name"])
        rest = len(items) - len(shown)
        blocks.append(html.Div(className="ns-block", children=[html.H4([_worst(items), " ", ns]), html.Ul([
            *[html.Li([badge(s["health"]), " ", dcc.Link(s["name"], href=f"/services?name={quote(s['service'])}"),
                       html.Span(_traffic_text(s), className="muted", title=s.get("health_reason") or None)])
              for s in shown],
            *([html.Li(className="muted ns-more", children=dcc.Link(
                f"\u2026 and {rest} more services", href=f"/services?{urlencode({'q': f'.{ns}.svc'})}"))]
              if rest else [])])]))
    hidden = len(by_ns) - len(names)
    if hidden:
        blocks.append(html.P(f"{hidden} more namespaces not listed (the healthiest); every service is on the "
                             "Services page.", className="muted", id="ov-ns-more"))
    return blocks


def _worst(services: list[dict[str, Any]]) -> html.Span:
    """A namespace is as healthy as its least healthy service (Kiali's namespace badge)."""
    worst = max((s.get("health", "na") for s in services), key=lambda h: _RANK.get(h, 0), default="na")
    return badge(worst)


def _scenario_switch(scenarios: list[dict[str, Any]]) -> html.Section:
    active = next((s["name"] for s in scenarios if s.get("active")), None)
    return html.Section(className="scenario", children=[
        html.H3("Fault scenario (bundled mesh)"),
        dcc.Dropdown(id="ov-scenario", options=[{"label": f"{s['name']}: {s.get('description', '')}", "value": s["name"]}
                                                for s in scenarios], value=active, placeholder="baseline (no fault)"),
        html.Button("Apply", id="ov-apply", n_clicks=0), html.Button("Clear", id="ov-clear", n_clicks=0),
        html.Span(id="ov-scenario-status", className="muted",
                  children=f"active: {active}" if active else "active: baseline")])


def register(app: Any, source: DataSource, ctx: Any) -> None:
    @app.callback(Output("ov-scenario-status", "children"), Input("ov-apply", "n_clicks"), Input("ov-clear", "n_clicks"),
                  State("ov-scenario", "value"), prevent_initial_call=True)
    def switch(apply_clicks, clear_clicks, name):  # noqa: ANN001, ANN202
        from dash import callback_context
        clear = callback_context.triggered_id == "ov-clear"
        if not clear and not name:
            return no_update
        try:
            source.apply_scenario(None if clear else name)
        except (Unavailable, ValueError, KeyError) as exc:
            return f"could not apply: {exc}"
        return "active: baseline" if clear else f"active: {name}"
