"""A scrape round parses and stores all its targets at once (#18): every target must end up with exactly the rows,
refusals (named by its own line numbers) and health it would have had scraped alone."""
from __future__ import annotations

import random
import time
from pathlib import Path

import httpx
import pandas as pd

from collector import schema as s
from collector import selfmetrics
from collector.sources.prom_scrape import Scraper
from collector.store import TelemetryStore

REAL = (Path(__file__).parent / "data" / "envoy_stats_prometheus.txt").read_bytes()


def _bodies() -> dict[str, bytes | None]:
    """Bodies as real targets answer them, and the ways they go wrong (None: the target is down)."""
    lines = REAL.splitlines()
    rng = random.Random(11)
    shuffled = lines[:]
    rng.shuffle(shuffled)
    bad = lines[:400]
    for at, line in ((30, b'istio_requests_total{reporter="source,le="5"} 1'), (200, b"\xff\xfe binary"),
                     (350, b'envoy_cluster_upstream_rq_total{a="1",a="2"} 3')):
        bad.insert(at, line)
    return {
        "real": REAL,
        "crlf-shuffled": b"\r\n".join(shuffled),  # no final newline: its last line must not run into the next body
        "refused-lines": b"\n".join(bad) + b"\n",
        "no-newline-at-end": b'istio_requests_total{reporter="destination",response_code="200"} 7',
        "empty": b"",
        "down": None,
    }


def _scrape(bodies: dict[str, bytes | None], together: bool) -> tuple[pd.DataFrame, dict, list]:
    urls = {f"http://127.0.0.1:9/{name}": body for name, body in bodies.items()}

    def fetch(target):
        body = urls[target.url]
        if body is None:
            raise httpx.ConnectError("connection refused")
        return body

    store = TelemetryStore()
    scraper = Scraper(list(urls), store, timeout=1)
    scraper._fetch = fetch  # what each target answered (the HTTP part is tested in test_prom_scrape)
    t_start = time.time()
    try:
        if together:
            scraper.poll()
        else:
            for url in urls:
                scraper._scrape_one(scraper_target(url))
        health = {url: (h.up, h.samples, h.malformed) for url, h in scraper.health().items()}
    finally:
        scraper.stop()
    refused = sorted((r.origin, r.line, r.reason) for r in selfmetrics.recent_rejects(1000)
                     if r.origin in urls and r.time >= t_start)
    rows = store.metrics().drop(columns=[s.TIME])
    for c in rows.columns:
        if isinstance(rows[c].dtype, pd.CategoricalDtype):
            rows[c] = rows[c].astype(str)
    return rows.sort_values(list(rows.columns)).reset_index(drop=True), health, refused


def scraper_target(url: str):
    from collector.sources.prom_scrape import ScrapeTarget

    return ScrapeTarget(url)


def test_a_round_stores_refuses_and_reports_per_target_as_each_target_alone():
    bodies = _bodies()
    joint_rows, joint_health, joint_refused = _scrape(bodies, together=True)
    alone_rows, alone_health, alone_refused = _scrape(bodies, together=False)
    pd.testing.assert_frame_equal(joint_rows, alone_rows)
    assert joint_health == alone_health
    assert joint_refused == alone_refused
    by_target = joint_rows.groupby(s.TARGET).size()
    assert by_target["http://127.0.0.1:9/no-newline-at-end"] == 1
    assert by_target["http://127.0.0.1:9/real"] == by_target["http://127.0.0.1:9/crlf-shuffled"] > 100
    assert joint_health["http://127.0.0.1:9/down"] == (False, 0, 0)
    assert {(r[1], r[2]) for r in joint_refused if r[0].endswith("/refused-lines")} == {
        (31, "bad_syntax"), (201, "invalid_utf8"), (351, "duplicate_label")}
