"""The canary source's cheap check (`pairs`): skipping the rate frame when no unseen version can be in it changes
nothing the source knows or finds, whatever order versions start taking traffic in (differential, real store)."""
from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from collector import schema as s
from collector.query import istio_rates
from collector.store import TelemetryStore
from diagnose.canary.live import finding_source, request_pairs

SERVICES = ["pay.shop.svc.cluster.local", "cart.shop.svc.cluster.local"]
VERSIONS = ["v1", "v2", "v3", "unknown"]
SCRAPE_S = 5.0


def _scrape(store: TelemetryStore, t: float, started: dict[tuple[str, str], tuple[float, float, float]]) -> None:
    """One scrape at `t` of every pair that took traffic by then: a 200 counter and, at its error share, a 503 one."""
    rows = []
    for (svc, ver), (t0, rps, errors) in started.items():
        if t < t0:
            continue
        for code, share in (("200", 1.0 - errors), ("503", errors)):
            if share <= 0:
                continue
            rows.append({s.METRIC: s.ISTIO_REQUESTS_TOTAL, s.TARGET: f"{svc}-{ver}", s.REPORTER: "destination",
                         s.SOURCE_WORKLOAD: "front", s.DESTINATION_SERVICE: svc, s.DESTINATION_VERSION: ver,
                         s.DESTINATION_WORKLOAD: f"{svc.split('.')[0]}-{ver}", s.RESPONSE_CODE: code,
                         s.LABELS: f'{svc}|{ver}|{code}', s.VALUE: 1.0 + rps * share * (t - t0)})
    if rows:
        df = pd.DataFrame(rows)
        df[s.TIME] = pd.Timestamp(t, unit="s", tz="UTC")
        store.add_samples(df)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_pairs_check_changes_nothing_the_source_knows_or_finds(seed: int) -> None:
    rng = random.Random(seed)
    start = 100_000.0
    # when each (service, version) first takes traffic: some before the first look (established), the rest at random
    started = {(svc, ver): (start + rng.choice([-4000.0, -500.0, rng.uniform(0, 450), rng.uniform(0, 450)]),
                            rng.uniform(2, 20), rng.choice([0.0, 0.0, 0.2]))
               for svc in SERVICES for ver in VERSIONS if rng.random() < 0.8}
    now = [start - 4000.0]
    store = TelemetryStore(window_s=7200.0, clock=lambda: now[0])
    reads = {"plain": 0, "gated": 0}

    def rates_for(name: str):
        def rates(window_s: float, end: float | None = None) -> pd.DataFrame:
            reads[name] += 1
            return istio_rates(store, window_s, end)
        return rates

    snap = SimpleNamespace(objects=[], mesh_config=SimpleNamespace(root_namespace="istio-system"))
    plain = finding_source(rates_for("plain"), lambda: snap, window_s=300.0, every_s=10.0, clock=lambda: now[0],
                           newcomer_s=3600.0)
    gated = finding_source(rates_for("gated"), lambda: snap, window_s=300.0, every_s=10.0, clock=lambda: now[0],
                           newcomer_s=3600.0, pairs=lambda w, e: request_pairs(store, w, e))
    scraped = now[0]
    for step in range(0, 600, 10):
        t = start + step + rng.uniform(0, 3)
        while scraped + SCRAPE_S <= t:  # the scrapes up to this look, as a live store holds them
            scraped += SCRAPE_S
            now[0] = scraped
            _scrape(store, scraped, started)
        now[0] = t
        got_plain, got_gated = plain(t), gated(t)
        assert [(f.code, f.fingerprint) for f in got_gated] == [(f.code, f.fingerprint) for f in got_plain], step
        assert gated.seen.first == plain.seen.first, step
    # the check did skip reads, and the run had newcomers to notice (else it would show nothing)
    assert reads["gated"] < reads["plain"]
    assert any(np.isfinite(list(v.values())).any() for v in plain.seen.first.values())


def test_an_unreadable_pairs_check_falls_back_to_the_rate_frame() -> None:
    reads: list[float] = []

    def rates(window_s: float, end: float | None = None) -> pd.DataFrame:
        reads.append(window_s)
        return pd.DataFrame()

    def broken(window_s: float, end: float) -> set[tuple[str, str]]:
        raise OSError("store closed")

    snap = SimpleNamespace(objects=[], mesh_config=SimpleNamespace(root_namespace="istio-system"))
    src = finding_source(rates, lambda: snap, window_s=300.0, pairs=broken)
    assert src(1000.0) == [] and reads == [3600.0, 300.0]  # history, then the stretch: read as without the check
