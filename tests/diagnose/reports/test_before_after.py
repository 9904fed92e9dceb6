"""Reports' "before/after" section (issue #14): two real topology builds compared, journal changes between them,
rendered in Markdown, HTML, print HTML and JSON; hostile names stay text; a saved snapshot keeps it."""
from __future__ import annotations

import json

from diagnose.reports.build import build_snapshot
from diagnose.reports.html import render_html
from diagnose.reports.markdown import render_markdown
from diagnose.reports.print_html import render_print_html
from diagnose.reports.snapshot import Snapshot
from mesh.journal import Journal, content_of
from tests.topology.frames import both, frame
from topology import build_graph
from topology.compare import compare_graphs

T = 1_700_000_000.0
HOSTILE = "<script>alert(1)</script>"


def _before_after(tmp_path) -> dict:
    before = build_graph(frame(both("productpage-v1", "details-v1", 10.0), both("productpage-v1", "reviews-v2", 3.0)),
                         "workload")
    after = build_graph(frame(both("productpage-v1", "reviews-v2", 1.0),
                              both("productpage-v1", "reviews-v2", 2.0, code="503", flags="UF")), "workload")
    out = compare_graphs(before, after)
    j = Journal(tmp_path / "j.sqlite")
    j.observe("DestinationRule", "bookinfo", "reviews", content_of({"host": "reviews"}), who="a", at=T - 900)
    j.observe("DestinationRule", "bookinfo", "reviews", content_of({"host": "reviews", "trafficPolicy": {
        "tls": {"mode": "DISABLE"}}}), who=f"kubectl {HOSTILE}", at=T - 100)
    j.gap(T - 50, T - 40)
    out["config_changes"] = j.query(since=T - 600, until=T)
    out["before"], out["after"] = {"end": T - 300, "window": 300.0}, {"end": T, "window": 300.0}
    j.close()
    return out


def test_reports_show_before_after_with_the_changes_between(tmp_path):
    snap = build_snapshot([], graph=[], window=(T - 300, T), generated_at=T, before_after=_before_after(tmp_path))
    md = render_markdown(snap)
    assert "## Before/after" in md and "0 edge(s) appeared, 1 vanished, 1 changed" in md
    assert "error % 0 -&gt; 66.7 (worse)" in md  # the 503s on productpage -> reviews (cells escape ">")
    assert "spec.trafficPolicy" in md and "DestinationRule bookinfo/reviews" in md and "watch gap" in md
    assert HOSTILE not in md and "&lt;script&gt;" in md
    for html in (render_html(snap), render_print_html(snap)):
        assert 'id="before-after"' in html or "Before/after" in html
        assert "Config changes between (2)" in html and HOSTILE not in html and "&lt;script&gt;" in html
    # the JSON form / a saved snapshot carries it and reads it back; a broken value is named and skipped
    back = Snapshot.from_dict(json.loads(json.dumps(snap.to_dict(), default=str)))
    assert back.before_after["summary"] == snap.before_after["summary"]
    broken = {**snap.to_dict(), "before_after": [1]}
    loaded = Snapshot.from_dict(json.loads(json.dumps(broken, default=str)), "r.json")
    assert loaded.before_after == {} and any("before_after must be an object" in p for p in loaded.problems)
    # no comparison: no section
    plain = build_snapshot([], graph=[], window=(T - 300, T), generated_at=T)
    assert "Before/after" not in render_markdown(plain) and "before-after" not in render_html(plain)
