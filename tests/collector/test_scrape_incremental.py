"""A scraper parses only the lines that changed since its last round (#18, "idle is idle"): every round must store
exactly the rows (same values, same order), refusals (same lines, same numbers) and health that a scraper seeing
the bodies for the first time stores."""
from __future__ import annotations

import random
import re
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collector import schema as s
from collector import selfmetrics
from collector.sources import prom_scrape
from collector.sources.prom_scrape import Scraper
from collector.store import TelemetryStore

REAL = (Path(__file__).parent / "data" / "envoy_stats_prometheus.txt").read_bytes()
GARBAGE = (b'istio_requests_total{reporter="source,le="5"} 1', b"\xff\xfe binary", b"envoy_cluster_upstream_rq{a=\"1\",a=\"2\"} 3",
           b"istio_requests_total{reporter=\"source\"} not-a-number", b"   ", b"# TYPE istio_requests_total counter")
_VALUE = re.compile(rb"(\s)([0-9.e+-]+)(\s*)$")


def _next(lines: list[bytes], rng: random.Random) -> list[bytes]:
    """The next round's body: a few counters moved, a line gone, one duplicated, a refused line somewhere."""
    out = lines[:]
    for i in rng.sample(range(len(out)), 25):
        out[i] = _VALUE.sub(lambda m: m.group(1) + str(rng.randint(0, 10**6)).encode() + m.group(3), out[i])
    del out[rng.randrange(len(out))]
    at = rng.randrange(len(out))
    out.insert(rng.randrange(len(out)), out[at])
    out.insert(rng.randrange(len(out)), rng.choice(GARBAGE))
    return out


def _round(scraper: Scraper, bodies: dict[str, bytes | None], monkeypatch) -> tuple[pa.Table, dict, list]:
    refused: list[tuple] = []
    monkeypatch.setattr(selfmetrics, "reject_errors",
                        lambda source, origin, errors, **kw: refused.extend((origin, e.line, e.reason) for e in errors))

    def fetch(target):
        body = bodies[target.url]
        if body is None:
            raise httpx.ConnectError("connection refused")
        return body

    scraper._fetch = fetch
    scraper.store = TelemetryStore()
    scraper.poll()
    rows = scraper.store.arrow("metrics").drop_columns([s.TIME])
    rows = pa.table({c: rows.column(c).cast(pa.string()) if pa.types.is_dictionary(rows.column(c).type)
                     else pc.fill_null(pc.if_else(pc.is_nan(rows.column(c)), -1.0, rows.column(c)), -2.0)
                     for c in rows.column_names})  # NaN (no le) compares unequal to itself
    health = {url: (h.up, h.samples, h.malformed) for url, h in scraper.health().items()}
    return rows, health, sorted(refused)


def test_each_round_stores_what_a_first_look_at_its_bodies_stores(monkeypatch):
    rng = random.Random(7)
    lines = {"real": REAL.splitlines(keepends=True), "crlf": REAL.replace(b"\n", b"\r\n").splitlines(keepends=True),
             "short": [b'istio_requests_total{reporter="destination",response_code="200"} 7\n']}
    urls = [f"http://127.0.0.1:9/{name}" for name in (*lines, "flaky")]
    kept = Scraper(urls, TelemetryStore(), timeout=1)
    parsed: list[int] = []
    parse = prom_scrape.parse_exposition
    monkeypatch.setattr(prom_scrape, "parse_exposition", lambda text: parsed.append(text.count(b"\n")) or parse(text))
    refusals = 0
    try:
        for i in range(8):
            bodies = {f"http://127.0.0.1:9/{name}": b"".join(body) for name, body in lines.items()}
            bodies[urls[1]] = bodies[urls[1]].rstrip(b"\r\n")  # no newline at the end
            bodies[urls[-1]] = None if i % 3 == 1 else (b"" if i % 3 == 2 else bodies[urls[0]][:5000])
            fresh = Scraper(urls, TelemetryStore(), timeout=1)
            try:
                expected = _round(fresh, bodies, monkeypatch)
            finally:
                fresh.stop()
            first_look = parsed[-1]
            got = _round(kept, bodies, monkeypatch)
            assert got[0].equals(expected[0]), f"round {i}: rows differ"
            assert got[1] == expected[1] and got[2] == expected[2], f"round {i}"
            assert got[0].num_rows > 200
            refusals += len(got[2])
            if i > 0:  # only what changed was parsed: a few dozen lines of the ~800 kept ones
                assert parsed[-1] < first_look / 5, (parsed[-1], first_look)
            lines = {name: _next(body, rng) if name != "short" else body for name, body in lines.items()}
    finally:
        kept.stop()
    assert refusals > 8  # refused lines are judged (and counted) again every round, not remembered


def test_a_second_look_at_an_unchanged_body_parses_only_its_refused_lines(monkeypatch):
    """What each line is remembered as after a round: its row (it gave one), parse again (refused or gave nothing:
    judged and counted every round) or dropped (a series not kept, never parsed). Holds for every line."""
    lines = REAL.splitlines(keepends=True)
    for i, bad in enumerate(GARBAGE):
        lines.insert(37 * (i + 1), bad + b"\n")
    body = b"".join(lines)
    url = "http://127.0.0.1:9/memo"
    scraper = Scraper([url], TelemetryStore(), timeout=1)
    parsed: list[bytes] = []
    parse = prom_scrape.parse_exposition
    monkeypatch.setattr(prom_scrape, "parse_exposition", lambda text: parsed.append(text) or parse(text))
    try:
        first = _round(scraper, {url: body}, monkeypatch)
        memo, remembered = scraper._seen[url].row.copy(), scraper._seen[url].rows.num_rows
        second = _round(scraper, {url: body}, monkeypatch)
    finally:
        scraper.stop()
    assert second[0].equals(first[0]) and second[1:] == first[1:]
    kept = set(prom_scrape.kept_lines(body, scraper._keep_re)[0].splitlines(keepends=True))
    refused = {line - 1 for _, line, _ in first[2]}
    gave_nothing = {i for i, ln in enumerate(lines) if ln in kept and not ln.strip(b" \r\n")}
    again = refused | gave_nothing | {i for i, ln in enumerate(lines) if ln in kept and ln.startswith(b"#")}
    assert refused and memo.min() >= prom_scrape._PARSE
    for i, ln in enumerate(lines):
        if ln not in kept:
            assert memo[i] == prom_scrape._DROPPED, (i, ln)
        elif i in again:
            assert memo[i] == prom_scrape._PARSE, (i, ln)
        else:
            assert memo[i] >= 0, (i, ln)
    assert sorted(memo[memo >= 0]) == list(range(remembered))  # each row remembered by exactly one line
    assert parsed[-1].splitlines(keepends=True) == [lines[i] for i in sorted(np.flatnonzero(memo == prom_scrape._PARSE))]
