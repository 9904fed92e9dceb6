"""`?end=` on the whole-page views (issue #14): which instant a page reads and which findings were open then."""
from __future__ import annotations

from dashboard.components.as_of import as_of, banner, earlier_episode, findings_at, open_at

NOW = 1_800_000_000.0


class _Live:
    graph_at = object()  # a source with history (LiveSource has graph_at)


def test_end_is_seconds_ago_or_an_epoch_time_and_bad_values_read_as_live_with_a_note():
    assert as_of({}, NOW).end is None and not as_of({}, NOW).note
    assert as_of({"end": "300"}, NOW, _Live()).end == NOW - 300
    assert as_of({"end": str(int(NOW - 5000))}, NOW, _Live()).end == NOW - 5000  # a permalink
    assert as_of({"end": "0"}, NOW, _Live()).end is None
    for bad in ("soon", "-5", "nan", "1e400"):
        got = as_of({"end": bad}, NOW, _Live())
        assert got.end is None and got.note, bad
    future = as_of({"end": str(int(NOW + 3600))}, NOW, _Live())
    assert future.end is None and "future" in future.note
    snapshot = as_of({"end": "300"}, NOW, object())  # no history to travel in
    assert snapshot.end is None and "snapshot" in snapshot.note


def test_banner_links_back_to_live_and_to_the_absolute_instant_keeping_the_filters():
    at = as_of({"end": "600", "service": "reviews"}, NOW, _Live())
    div = banner("/traces", {"end": "600", "service": "reviews", "x": "<script>"}, at, keep=("service",))
    links = {c.id: c.href for c in div.children if getattr(c, "id", None)}
    assert links["asof-live"] == "/traces?service=reviews"
    assert links["asof-permalink"] == f"/traces?service=reviews&end={int(NOW - 600)}"
    assert banner("/", {}, as_of({}, NOW)) is None


def _f(code, severity="warning", status="open", first=None, opened=None, resolved=None):
    return {"code": code, "fingerprint": code, "severity": severity, "status": status, "first_seen": first,
            "opened_at": opened or first, "resolved_at": resolved}


def test_a_finding_was_open_between_its_episode_onset_and_its_resolution():
    t = NOW - 1000
    resolved = _f("A", status="resolved", first=t - 100, resolved=t + 100)
    assert open_at(resolved, t) and not open_at(resolved, t + 100) and not open_at(resolved, t - 101)
    still = _f("B", first=t - 10)
    assert open_at(still, t) and not open_at(still, t - 11)
    reopened = _f("C", first=t - 500, opened=t + 50)  # came back after `t`: its earlier episode's end is not kept
    assert not open_at(reopened, t) and earlier_episode(reopened, t) and not earlier_episode(reopened, t + 60)
    pending = _f("D", status="pending", first=t - 10)
    assert not open_at(pending, t)


def test_findings_at_a_past_instant_are_those_open_then_shown_open_worst_first():
    t = NOW - 1000
    found = [_f("W", first=t - 5), _f("E", "error", status="resolved", first=t - 50, resolved=t + 20),
             _f("later", "error", first=t + 5), _f("gone", "error", status="resolved", first=t - 90, resolved=t - 1)]
    then = findings_at(found, t)
    assert [f["code"] for f in then] == ["E", "W"]
    assert all(f["status"] == "open" for f in then)
    assert [f["code"] for f in findings_at(found, None)] == ["W", "later"]  # live: what is open now


def test_traces_as_of_an_instant_leave_out_what_started_after_it():
    import pandas as pd

    from dashboard.query import TraceFilters
    from dashboard.snapshot_source import filter_traces, summarize_traces

    spans = pd.DataFrame({"trace_id": ["a", "a", "b", "c"], "span_id": ["1", "2", "3", "4"],
                          "parent_span_id": ["", "1", "", ""], "service_name": ["gw", "reviews", "gw", "gw"],
                          "name": ["GET /"] * 4, "start_time": [NOW - 30, NOW - 29, NOW - 10, NOW - 2],
                          "end_time": [NOW - 28, NOW - 28.5, NOW - 9, NOW - 1],
                          "status_code": ["", "ERROR", "", ""]})
    summary = summarize_traces(spans)
    assert [t["trace_id"] for t in filter_traces(summary, TraceFilters())] == ["c", "b", "a"]
    assert [t["trace_id"] for t in filter_traces(summary, TraceFilters(end=NOW - 5))] == ["b", "a"]
    assert [t["trace_id"] for t in filter_traces(summary, TraceFilters(end=NOW - 5, status="error"))] == ["a"]


def test_the_slos_page_as_of_an_outage_shows_the_page_alert_that_live_no_longer_does():
    from types import SimpleNamespace

    from dashboard.pages import slos as slos_page
    from diagnose.rules.runtime import RuntimeContext
    from diagnose.slo import SLO, SloEngine
    from diagnose.slo.windows import parse_duration
    from tests.dashboard.test_incident_sections import by_id, text, walk
    from tests.diagnose.runtime.tables import T0, fqdn, requests, table

    eng = SloEngine([SLO(name="reviews-availability", namespace="bookinfo", service=fqdn("reviews"),
                         objective=99.9, period_s=parse_duration("1d"))])

    def feed(df, now):
        eng.ingest_requests(RuntimeContext(start=now - 60, end=now, requests=df).edge_requests, now)

    feed(requests("productpage-v1", fqdn("reviews"), "ok", 600, start=T0, end=T0 + 600), T0 + 600)
    feed(table(requests("productpage-v1", fqdn("reviews"), "no_cluster", 20, start=T0 + 600, end=T0 + 630),
               requests("productpage-v1", fqdn("reviews"), "ok", 10, start=T0 + 600, end=T0 + 630)), T0 + 630)
    feed(requests("productpage-v1", fqdn("reviews"), "ok", 3000, start=T0 + 630, end=T0 + 4200), T0 + 4200)

    class EngineSource:  # what LiveSource.slos does with its diagnoser's engine, over this engine
        graph_at = None

        def now(self):
            return T0 + 4200

        def slos(self, end=None):
            return [st.to_dict() for st in eng.status(self.now() if end is None else end)]

    ctx = SimpleNamespace(refresh_s=5.0)
    live = slos_page.layout(EngineSource(), ctx, {})
    past = slos_page.layout(EngineSource(), ctx, {"end": str(int(T0 + 630))})
    alert = lambda page: [text(tr.children[5]) for tr in by_id(page, "slo-table").children[1].children][0]  # noqa: E731
    assert "page" in alert(past).lower() and "page" not in alert(live).lower(), (alert(past), alert(live))
    assert "Viewing the past" in text(by_id(past, "asof-banner"))
    assert not any(getattr(n, "id", None) == "asof-banner" for n in walk(live))


def test_the_findings_page_as_of_an_instant_lists_and_times_what_was_open_then():
    from dashboard.components.as_of import timeline_as_of
    from dashboard.pages.findings import rows
    from dashboard.query import finding_matches

    t = NOW - 1000
    found = [{**_f("W", first=t - 120), "category": "mtls", "message": "m", "resource": None},
             {**_f("E", "error", status="resolved", first=t - 60, resolved=t + 30), "category": "runtime",
              "message": "m", "resource": None},
             {**_f("later", "error", first=t + 5), "category": "runtime", "message": "m", "resource": None}]

    class Findings:  # the DataSource's findings() contract over fixed records
        def now(self):
            return NOW

        def findings(self, filters):
            return [f for f in found if finding_matches(f, filters)]

    past = rows(Findings(), {"severity": "error,warning"}, end=t)
    assert {r["code"]: (r["status"], r["age_min"]) for r in past} == {"E": ("open", 1.0), "W": ("open", 2.0)}
    assert [r["code"] for r in rows(Findings(), {"category": "runtime", "status": "open"}, end=t)] == ["E"]
    assert [r["code"] for r in rows(Findings(), {"status": "resolved"}, end=t)] == []  # nothing was resolved then
    assert sorted(r["code"] for r in rows(Findings(), {"status": "open"})) == ["W", "later"]  # live
    bars = {f["code"]: f["status"] for f in timeline_as_of(found, t)}
    assert bars == {"W": "open", "E": "open"}  # 'later' had not begun; E had not yet resolved
    assert timeline_as_of(found, t + 60)[1]["status"] == "resolved"


def test_slo_budget_charts_carry_the_config_changes_of_their_time_axis(tmp_path):
    from types import SimpleNamespace

    from dashboard.pages import slos as slos_page
    from mesh.journal import Journal, content_of
    from tests.dashboard.test_incident_sections import walk

    j = Journal(tmp_path / "journal.sqlite")
    j.observe("DestinationRule", "bookinfo", "reviews", content_of({"host": "reviews"}), at=NOW - 900, who="a")
    j.observe("DestinationRule", "bookinfo", "reviews", content_of({"host": "reviews", "x": "<b>1</b>"}),
              at=NOW - 600, who="kubectl")
    series = [[NOW - 1200 + 60 * i, 1.0 - 0.01 * i] for i in range(20)]

    class Source:
        def now(self):
            return NOW

        def slos(self, end=None):
            return [{"name": "reviews-availability", "service": "reviews", "objective": 99.9, "alert": "ok",
                     "budget_remaining": 0.8, "burn_rates": {}, "budget_series": series}]

        def changes(self, since=None, until=None, limit=1000, **kw):
            return j.query(since=since, until=until, limit=limit)

    page = slos_page.layout(Source(), SimpleNamespace(refresh_s=5.0), {})
    figs = [n.figure for n in walk(page) if getattr(n, "figure", None)]
    shapes = figs[0]["layout"].get("shapes") or []
    assert len([sh for sh in shapes if sh.get("line", {}).get("dash") == "dash"]) >= 1  # the update at NOW - 600


def test_end_also_reads_a_utc_date_time_as_the_picker_submits_it_and_refuses_one_beyond_retention():
    from datetime import datetime, timezone

    from dashboard.components.as_of import iso_utc

    t = NOW - 7200
    picked = datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M")  # no seconds, no zone: UTC
    assert as_of({"end": picked}, NOW, _Live()).end == t - t % 60
    assert as_of({"end": iso_utc(t)}, NOW, _Live()).end == int(t)  # the form's value of an instant reads back
    assert as_of({"end": iso_utc(t) + "+02:00"}, NOW, _Live()).end == int(t) - 7200  # an explicit zone is honoured
    assert as_of({"end": "2026-13-45T99:00"}, NOW, _Live()).note  # shaped like a date, not one: a note
    ancient = as_of({"end": "1999-01-01T00:00"}, NOW, _Live())  # an instant, not 915 million seconds ago
    assert ancient.end is None and "1999-01-01" in ancient.note and "older than the store keeps" in ancient.note
    old = as_of({"end": str(int(NOW - 2 * 86400))}, NOW, _Live())
    assert old.end is None and "older than the store keeps" in old.note

    class _Short(_Live):
        def retention_s(self):
            return 3600.0
    assert as_of({"end": "5000"}, NOW, _Short()).end is None and as_of({"end": "3000"}, NOW, _Short()).end == NOW - 3000


def test_window_is_a_duration_or_seconds_bounded_by_a_scrape_and_the_retention_bad_ones_fall_back_with_a_note():
    from dashboard.components.as_of import MIN_WINDOW_S, RETENTION_S, window_of, window_options

    assert window_of({}, 300).seconds == 300 and not window_of({}, 300).asked
    for raw, seconds in (("30s", 30), ("5m", 300), ("1h30m", 5400), ("1d", 86400), ("600", 600), ("90.5", 90.5)):
        got = window_of({"window": raw}, 300, _Live())
        assert (got.seconds, got.asked, got.note) == (seconds, True, ""), raw
    for bad in ("soon", "-5m", "0", "nan", "5 parsecs", "1e9999"):
        got = window_of({"window": bad}, 300, _Live())
        assert got.seconds == 300 and not got.asked and bad[:5] in got.note, bad
    long = window_of({"window": "30d"}, 300, _Live())
    assert long.seconds == RETENTION_S and "longer than the store keeps" in long.note
    short = window_of({"window": "2s"}, 300, _Live())
    assert short.seconds == MIN_WINDOW_S and short.note
    assert (5400.0, "1h30m") in window_options(5400.0) and len(window_options(300.0)) == len(window_options(60.0))


def test_the_time_form_submits_end_and_window_keeping_the_pages_other_parameters():
    from dashboard.components.as_of import Window, iso_utc, time_form

    at = as_of({"end": "600"}, NOW, _Live())
    form = time_form("/services", {"name": "reviews", "x": "y", "end": "600"}, at, Window(900.0, True), ("name",))
    assert form.action == "/services" and form.method == "get"
    inputs = {c.name: c for c in form.children if getattr(c, "name", None)}
    assert inputs["name"].value == "reviews" and inputs["name"].type == "hidden" and "x" not in inputs
    assert inputs["end"].type == "datetime-local" and inputs["end"].value == iso_utc(NOW - 600)
    chosen = [o.value for o in inputs["window"].children if o.selected]
    assert chosen == ["15m"]
    live = time_form("/slos", {}, as_of({}, NOW), Window(60.0))
    assert {c.name: c for c in live.children if getattr(c, "name", None)}["end"].value == ""  # empty: live


def test_every_windowed_page_renders_any_end_and_window_and_says_why_a_bad_one_was_not_honoured():
    """Each page over a snapshot-backed source with history: a permalink, a date-time, a bad end and a bad window."""
    from dashboard.app import AppContext
    from dashboard.pages import findings, overview, service, slos, topology, traces
    from dashboard.sample import bookinfo_snapshot
    from dashboard.snapshot_source import SnapshotSource

    snap = SnapshotSource(bookinfo_snapshot())
    asked: list[tuple] = []

    class _History:
        def __getattr__(self, k):
            return getattr(snap, k)

        def graph_at(self, graph_type, namespaces, window_s, end):
            asked.append(("graph_at", graph_type, window_s, end))
            result = snap.graph(graph_type, namespaces, window_s)
            result.window_s, result.updated_at = window_s, end
            return result

        def services(self, end=None, window_s=None):
            asked.append(("services", end, window_s))
            return snap.services()

        def slos(self, end=None):
            return snap.slos()

    source = _History()
    now = source.now()
    permalink = str(int(now - 3600))
    for page in (overview, findings, traces, slos, topology):
        asked.clear()
        page.layout(source, AppContext(), {"end": permalink, "window": "15m"})
        text = str(page.layout(source, AppContext(), {"end": "soon", "window": "sometime"}))
        assert "not a duration" in text and "showing live data" in text, page.PATH
    asked.clear()
    page = topology.layout(source, AppContext(), {"end": permalink, "window": "15m", "graphType": "app"})
    assert ("graph_at", "app", 900.0, float(permalink)) in asked  # the graph of exactly [end - 15m, end]
    assert f"end={permalink}" in page_link(page) and "window=15m" in page_link(page)
    asked.clear()
    service.layout(source, AppContext(), {"name": "reviews.bookinfo.svc.cluster.local", "end": permalink, "window": "1h"})
    assert ("services", float(permalink), 3600.0) in asked


def page_link(component) -> str:
    """The href of the topology's 'link to this view'."""
    if getattr(component, "id", None) == "topo-permalink":
        return component.href
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else [children]:
        if child is not None and not isinstance(child, str):
            found = page_link(child)
            if found:
                return found
    return ""


def test_the_topology_end_control_keeps_a_chosen_instant_as_an_epoch_so_it_does_not_slide_with_the_clock():
    from dashboard.pages.topology import ENDS, _end_options, seconds_ago

    class _Clock:
        t = NOW

        def now(self):
            return self.t

    clock = _Clock()
    options = _end_options(4321, NOW - 4321)
    assert [o["value"] for o in options][:len(ENDS)] == [v for v, _ in ENDS] and options[-1]["value"] == int(NOW - 4321)
    assert _end_options(300, NOW - 300) == [{"label": l, "value": v} for v, l in ENDS]  # a quick choice: no extra
    assert seconds_ago(clock, 300) == 300 and seconds_ago(clock, None) == 0
    assert seconds_ago(clock, int(NOW - 4321)) == 4321
    clock.t = NOW + 3600  # an hour later (the tab left open), the same instant: now an hour further back
    assert seconds_ago(clock, int(NOW - 4321)) == 4321 + 3600 and seconds_ago(clock, 300) == 300
