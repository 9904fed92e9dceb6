"""The Overview shows what the collectors refused: counts per source and reason, and escaped samples (#18)."""
from types import SimpleNamespace

from dash import dcc, html

from collector import selfmetrics
from collector.parse.exposition import parse_exposition
from dashboard.pages import overview
from dashboard.sample import bookinfo_snapshot
from dashboard.snapshot_source import SnapshotSource
from tests.dashboard.test_incident_sections import by_id, text, walk

HOSTILE = b'istio_requests_total{reporter="source,le="5"<script>alert(1)</script>"} 1\n'


def _page():
    return overview.layout(SnapshotSource(bookinfo_snapshot()), SimpleNamespace(refresh_s=5.0), {})


def test_overview_lists_refused_telemetry_with_counts_and_escaped_samples():
    before = selfmetrics.malformed_by_reason("exposition")
    body = b"istio_requests_total 1\n" + HOSTILE + b"bad line \xff\xfe\n" + b"istio_requests_total 2\n"
    result = parse_exposition(body)  # the scraper's own path: parse, then report each refused line
    assert result.table.num_rows == 2 and len(result.errors) == 2
    selfmetrics.reject_errors("exposition", "http://127.0.0.1:1/stats/prometheus", result.errors)
    after = selfmetrics.malformed_by_reason("exposition")
    grown = {r: n - before.get(r, 0) for r, n in after.items() if n - before.get(r, 0)}
    assert sum(grown.values()) == 2

    page = _page()
    section = by_id(page, "ov-rejects")
    rows = [[text(td) for td in tr.children] for tr in walk(by_id(section, "ov-rejects-counts")) if isinstance(tr, html.Tr)]
    shown = {(r[0], r[1]): float(r[2].replace(",", "")) for r in rows[1:]}
    for reason, n in after.items():  # every reason of the source, with the same count as /metrics
        assert shown[("exposition", reason)] == n
    recent = by_id(section, "ov-rejects-recent")
    samples = [c.children for c in walk(recent) if isinstance(c, html.Code)]
    assert any("<script>alert(1)</script>" in s for s in samples)  # the bytes as text ...
    assert any("\\xff\\xfe" in s for s in samples)  # ... non-UTF-8 bytes shown as escapes
    # ... and only ever as text children: nothing on the section renders raw HTML or Markdown
    assert not any(isinstance(n, dcc.Markdown) or getattr(n, "dangerously_allow_html", False) for n in walk(section))
    assert "line 2" in text(recent)  # the refused line is named by its number


def test_a_collector_that_refused_nothing_says_so(monkeypatch):
    monkeypatch.setattr(selfmetrics, "malformed_by_reason", lambda source=None: {})
    section = by_id(_page(), "ov-rejects")
    assert "No telemetry refused" in text(section)


def test_refusal_counts_read_their_counter_alone_with_the_registrys_figures():
    """The Overview asks the refusal counts once per source kind per request: reading them must not run the
    registry's other collectors (the per-thread CPU one reads /proc for every thread: 85 % of the Overview's CPU
    at 50 rps), and must give what the whole registry (what /metrics serves) says."""
    from dashboard.components.ingest_rejects import SOURCES

    calls = []

    class Spy:
        def collect(self):
            calls.append(1)
            return []

    spy = Spy()
    selfmetrics.REGISTRY.register(spy)
    calls.clear()  # registering collects once to learn the names
    try:
        selfmetrics.reject_errors("exposition", "http://127.0.0.1:1/x", parse_exposition(HOSTILE).errors)
        _page()
        by_source = {src: selfmetrics.malformed_by_reason(src) for src in SOURCES}
        total = selfmetrics.malformed_total()
        assert calls == []
    finally:
        selfmetrics.REGISTRY.unregister(spy)
    whole = {}
    for metric in selfmetrics.REGISTRY.collect():
        for s in metric.samples:
            if s.name == "meshscope_collector_malformed_total":
                key = (s.labels["source"], s.labels["reason"])
                whole[key] = whole.get(key, 0.0) + s.value
    assert whole and {(src, r): n for src, got in by_source.items() for r, n in got.items()} == whole
    assert total == sum(whole.values())
