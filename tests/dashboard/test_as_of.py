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
