"""Config changes on time axes and in the side panel (issue #14), over a real journal in a tmp dir."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from dashboard.components import change_marks
from dashboard.components.charts import by_version, golden
from mesh.journal import Journal, content_of

T0 = 1_700_000_000.0
HOSTILE = "<img src=x onerror=alert(1)>"


class JournalSource:
    """The part of a DataSource the markers use (`changes`, `now`) over a real journal."""

    def __init__(self, journal: Journal, now: float) -> None:
        self.journal, self._now = journal, now

    def now(self) -> float:
        return self._now

    def changes(self, since=None, until=None, namespace=None, kind=None, name=None, limit=1000):  # noqa: ANN001
        return self.journal.query(since=since, until=until, namespace=namespace, kind=kind, name=name, limit=limit)


@pytest.fixture
def source(tmp_path):
    j = Journal(tmp_path / "journal.sqlite")
    j.observe("DestinationRule", "bookinfo", "reviews", content_of({"host": "reviews"}), who="x", at=T0, initial=True)
    j.observe("DestinationRule", "bookinfo", "reviews", content_of({"host": "reviews", "trafficPolicy": {
        "tls": {"mode": "DISABLE"}}}), who=f"kubectl {HOSTILE}", at=T0 + 100)
    j.observe("AuthorizationPolicy", "bookinfo", "billing", content_of({"selector": {"matchLabels": {"app": "billing"}}}),
              who="helm (Apply)", at=T0 + 110)
    j.observe("AuthorizationPolicy", "shop", "deny", content_of({"action": "DENY"}), who="helm (Apply)", at=T0 + 120)
    j.observe("Sidecar", "bookinfo", "default", content_of({"egress": []}), who="old", at=T0 - 900)  # before the window
    j.gap(T0 + 125, T0 + 130)
    yield JournalSource(j, T0 + 200)
    j.close()


def _series(start: float, end: float) -> dict:
    ts = [start + (end - start) * i / 9 for i in range(10)]
    return {"t": ts, "rps": [1.0] * 10, "error_pct": [0.0] * 10, "p50": [1.0] * 10, "p95": [2.0] * 10, "p99": [3.0] * 10}


def test_charts_get_a_line_per_change_in_their_range_with_escaped_hover(source):
    figs = change_marks.mark_figures(source, golden(_series(T0, T0 + 200)))
    (fig,) = figs
    lines = [s for s in fig["layout"]["shapes"] if s["type"] == "line"]
    at = sorted(datetime.fromisoformat(s["x0"]).timestamp() for s in lines)
    assert at == [T0 + 100, T0 + 110, T0 + 120, T0 + 130]  # not the initial listing, nor a change before the axis
    assert [s["line"]["dash"] for s in lines].count("dot") == 1  # the watch gap, drawn apart
    (marks,) = [t for t in fig["data"] if t["name"] == "config changes"]
    text = " | ".join(marks["text"])
    assert HOSTILE not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "DestinationRule bookinfo/reviews: spec.trafficPolicy" in text and "watch gap" in text
    assert fig["layout"]["yaxis99"]["overlaying"] == "y"  # the markers ride on their own hidden axis
    # a chart over an earlier range gets none of them; several figures share one range (the service page)
    assert "shapes" not in change_marks.mark_figures(source, golden(_series(T0 - 600, T0 - 300)))[0]["layout"]
    per_version = {"v1": _series(T0 + 50, T0 + 115)}
    marked = change_marks.mark_figures(source, [by_version(per_version, m, m) for m in ("rps", "p95")])
    assert all(len(f["layout"]["shapes"]) == 2 for f in marked)


def test_a_chart_of_many_changes_keeps_the_latest_few(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    for i in range(change_marks.MAX_MARKS + 10):
        j.observe("ConfigMap", "a", "c", content_of({"i": i}), who="w", at=T0 + i)
    fig = change_marks.mark_figures(JournalSource(j, T0 + 100), golden(_series(T0, T0 + 100)))[0]
    xs = sorted(datetime.fromisoformat(s["x0"]).timestamp() for s in fig["layout"]["shapes"])
    assert len(xs) == change_marks.MAX_MARKS and xs[-1] == T0 + change_marks.MAX_MARKS + 9
    j.close()


def test_side_panel_lists_what_changed_around_the_element_most_direct_first(source):
    node = {"id": "n1", "type": "workload", "name": "reviews-v1", "app": "reviews", "namespace": "bookinfo"}
    found = change_marks.related_changes(source, node, False, T0, T0 + 200)
    assert [r["ref"] for r in found] == ["DestinationRule bookinfo/reviews", "AuthorizationPolicy bookinfo/billing"]
    assert found[0]["relation"] == "same host or workload" and found[1]["relation"] == "same namespace"
    edge = {"id": "e1", "source": "a", "target": "b", "source_label": "productpage-v1", "target_label": "reviews-v1",
            "target_app": "reviews", "target_namespace": "bookinfo"}
    assert change_marks.related_changes(source, edge, True, T0, T0 + 200)[0]["ref"] == "DestinationRule bookinfo/reviews"
    elsewhere = {"id": "n2", "type": "workload", "name": "web", "app": "web", "namespace": "front"}
    assert change_marks.related_changes(source, elsewhere, False, T0, T0 + 200) == []  # other namespaces: not listed
    assert change_marks.related_changes(source, node, False, T0 + 150, T0 + 200) == []  # outside the window

    section = change_marks.what_changed(source, node, False, T0, T0 + 200)
    assert section[0].children == "What changed (2)"
    items = section[1].children
    rendered = str(items[0].children)
    assert "DestinationRule bookinfo/reviews" in rendered and f"by kubectl {HOSTILE}" in rendered  # Dash: text, not HTML
    none = change_marks.what_changed(source, elsewhere, False, T0, T0 + 200)
    assert none[1].id == "panel-changes" and "No config change" in none[1].children


def test_no_journal_means_no_marks_and_no_error():
    class NoJournal:
        def changes(self, **_kw):  # noqa: ANN003
            from dashboard.query import Unavailable
            raise Unavailable("no config journal on this source")

    figs = golden(_series(T0, T0 + 60))
    assert change_marks.mark_figures(NoJournal(), figs) == figs and "shapes" not in figs[0]["layout"]
    assert change_marks.mark_figures(object(), figs) == figs
    assert change_marks.window_changes(object(), T0, T0 + 1) == []


def test_findings_timeline_bars_start_at_the_episode_onset_with_changes_marked(source):
    from dashboard.components.findings_timeline import timeline

    now = T0 + 200
    findings = [
        {"code": "MS3006", "severity": "error", "status": "open", "message": HOSTILE, "first_seen": T0 - 3000,
         "opened_at": T0 + 140, "resource": {"kind": "Service", "namespace": "bookinfo", "name": "reviews"}},
        {"code": "MS3006", "severity": "error", "status": "open", "message": "m", "first_seen": T0 + 150,
         "resource": {"kind": "Service", "namespace": "bookinfo", "name": "reviews"}},  # same code+object, other edge
        {"code": "MS3010", "severity": "warning", "status": "resolved", "message": "m", "first_seen": T0 + 10,
         "resolved_at": T0 + 60, "resource": {"kind": "Service", "namespace": "shop", "name": "cart"}},
        {"code": "MS2001", "severity": "warning", "status": "open", "message": "config, never seen live"},
    ]
    fig = timeline(source, findings, now)
    bars = [t for t in fig["data"] if t["mode"] == "lines"]
    spans = {t["y"][0]: [datetime.fromisoformat(x).timestamp() for x in t["x"]] for t in bars}
    assert spans == {"MS3010 Service shop/cart": [T0 + 10, T0 + 60],
                     "MS3006 Service bookinfo/reviews": [T0 + 140, now],  # the reopening, not the first episode
                     "MS3006 Service bookinfo/reviews (2)": [T0 + 150, now]}
    assert all(HOSTILE not in t for b in bars for t in b["text"])
    lines = {datetime.fromisoformat(s["x0"]).timestamp() for s in fig["layout"]["shapes"]}
    assert {T0 + 100, T0 + 110, T0 + 120} <= lines  # the changes before the onset share the axis
    empty = timeline(source, [], now)
    assert empty["data"][0]["name"] == "config changes"  # no findings: the axis still shows recent changes
