"""The scraper parses only the lines of series it keeps; what it stores and refuses is unchanged (#18)."""
from __future__ import annotations

import random
from pathlib import Path

import pandas as pd

from collector import selfmetrics
from collector.parse.exposition import parse_exposition
from collector.sources.prom_scrape import DEFAULT_KEEP, Scraper, ScrapeTarget, keep_filter, kept_lines, prepare_samples
from collector.store import TelemetryStore

REAL = (Path(__file__).parent / "data" / "envoy_stats_prometheus.txt").read_bytes()
WHEN = pd.Timestamp("2026-12-06T12:00:00Z")


def _stored(body: bytes, prefilter: bool) -> pd.DataFrame:
    if prefilter:
        body = kept_lines(body, keep_filter(DEFAULT_KEEP))[0]
    t = prepare_samples(parse_exposition(body).table, "t", WHEN, DEFAULT_KEEP).to_pandas()
    for c in t.columns:  # compare values, not dictionary encodings
        if isinstance(t[c].dtype, pd.CategoricalDtype):
            t[c] = t[c].astype(str)
    return t.reset_index(drop=True)


def test_prefiltered_scrape_stores_exactly_what_the_full_parse_keeps():
    assert len(kept_lines(REAL, keep_filter(DEFAULT_KEEP))[0]) < len(REAL) / 2  # most of the body is never parsed
    pd.testing.assert_frame_equal(_stored(REAL, True), _stored(REAL, False))
    # the same on shuffled, CRLF and indented variants of the real lines (kept and dropped series mixed)
    lines = REAL.splitlines()
    rng = random.Random(7)
    for _ in range(5):
        rng.shuffle(lines)
        body = b"\n".join((b"  " + ln if rng.random() < 0.05 else ln) + (b"\r" if rng.random() < 0.1 else b"")
                          for ln in lines)
        pd.testing.assert_frame_equal(_stored(body, True), _stored(body, False))


def test_refused_lines_of_kept_series_are_still_refused_and_named_by_their_line_in_the_body():
    bad = [b'istio_requests_total{reporter="source,le="5"} 1', b'envoy_cluster_upstream_rq_total{a="1",a="2"} 3',
           b'istio_requests_total{__name__="x"} 1']
    lines = REAL.splitlines()[:300]
    where = [40, 120, 250]
    for at, b in zip(where, bad):
        lines.insert(at, b)
    body = b"\n".join(lines) + b"\n"
    store = TelemetryStore()
    origin = "http://127.0.0.1:9/prefilter-test"
    scraper = Scraper([origin], store, timeout=1)
    scraper._fetch = lambda target: body  # the body a target answered (the HTTP part is tested elsewhere)
    try:
        stored = scraper._scrape_one(ScrapeTarget(origin))
    finally:
        scraper.stop()
    assert stored == len(_stored(body, False))  # every good kept line stored
    refused = [r for r in selfmetrics.recent_rejects(200) if r.origin == origin]
    assert sorted(r.line for r in refused) == [w + 1 for w in where]  # 1-based numbers in the body the target sent
