"""The scraper under hostile targets, over real HTTP on 127.0.0.1: mutated real scrapes, hostile
lines, invalid UTF-8, a body past the size limit; no exception escapes a round, every good
series of every target is stored once per scrape, and refusals are counted per reason."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from collector import schema as s
from collector import selfmetrics
from collector.sources import prom_scrape
from collector.sources.prom_scrape import Scraper
from collector.store import TelemetryStore
from tests.util import BodyServer

REAL = (Path(__file__).parent / "data" / "envoy_stats_prometheus.txt").read_bytes()
HOSTILE = [b'istio_requests_total{reporter="source,le="5"} 3', b'istio_requests_total{__name__="x"} 1',
           b'istio_requests_total{a="1",a="2"} 1', b'istio_requests_total{a="\\q"} 1', b'istio_requests_total{a="\xff"} 1',
           b"istio_requests_total 1e400 99999999999999999999999999", b"istio_requests_total{" * 5000,
           bytes(range(256)).replace(b"\n", b""), b"istio_requests_total " + b"9" * (2 * 2**20)]


def _good(k: int) -> bytes:
    return f'istio_requests_total{{reporter="source",request_id_marker="good-{k}"}} {k}'.encode()


class _Target(BodyServer):
    """A real HTTP server answering one body per GET (set `body` between scrapes)."""

    def __init__(self) -> None:
        self.body = b""
        super().__init__(lambda _path: self.body)


@pytest.fixture
def targets():
    ts = [_Target(), _Target()]
    yield ts
    for t in ts:
        t.close()


def _mutate(body: bytes, rnd: random.Random) -> bytes:
    b = bytearray(body)
    for _ in range(rnd.randint(1, 20)):
        i = rnd.randrange(len(b))
        b[i:i + rnd.randint(0, 4)] = bytes(rnd.choice(b'"{},=\\ \xff\x00le_0123456789.#') for _ in range(rnd.randint(0, 4)))
    return bytes(b)


def test_hostile_scrapes_never_stop_a_round_and_good_series_are_stored_once(targets):
    bad, good = targets
    rnd = random.Random(7)
    store = TelemetryStore(window_s=10**10)
    scraper = Scraper([bad.url, good.url], store, timeout=10, keep=None)
    rounds = 12
    try:
        for r in range(rounds):
            hostile = HOSTILE[r % len(HOSTILE)]
            # the bad target: good marker lines around hostile ones and a mutated real scrape
            bad.body = b"\n".join([_good(2 * r), hostile, _mutate(REAL, rnd), _good(2 * r + 1), b""])
            good.body = REAL
            scraper.poll()
            assert scraper.health()[good.url].up
            assert scraper.health()[bad.url].up, scraper.health()[bad.url].last_error
    finally:
        scraper.stop()
    m = store.metrics()
    markers = m[m["labels"].astype(str).str.contains("request_id_marker")]["labels"].astype(str)
    assert sorted(markers.str.extract(r"good-(\d+)")[0].astype(int)) == list(range(2 * rounds))
    n_real = sum(1 for line in REAL.splitlines() if line and not line.startswith(b"#"))
    assert (m[s.TARGET] == good.url).sum() == n_real * rounds  # the clean target: every series, every round
    reasons = selfmetrics.malformed_by_reason("exposition")
    assert {"invalid_utf8", "duplicate_label", "reserved_label", "bad_escape"} <= set(reasons)
    assert any(r.origin == bad.url for r in selfmetrics.recent_rejects(limit=200, source="exposition"))


def test_a_body_past_the_limit_is_refused_and_the_other_target_goes_on(targets, monkeypatch):
    big, good = targets
    monkeypatch.setattr(prom_scrape, "MAX_SCRAPE_BYTES", 1 << 20)
    big.body = REAL * ((2 << 20) // len(REAL) + 1)
    good.body = REAL
    store = TelemetryStore(window_s=10**10)
    scraper = Scraper([big.url, good.url], store, timeout=10, keep=None)
    try:
        before = selfmetrics.malformed_total("exposition", big.url, "too_large")
        scraper.poll()
    finally:
        scraper.stop()
    h = scraper.health()
    assert not h[big.url].up and "over" in h[big.url].last_error
    assert h[good.url].up and h[good.url].samples > 0
    assert selfmetrics.malformed_total("exposition", big.url, "too_large") == before + 1
    assert set(store.metrics()[s.TARGET]) == {good.url}
