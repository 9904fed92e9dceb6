"""A series of rate frames from one read of the store equals the frames read point by point.

`istio_rates_range` (the Service page's 20 points on the bundled backend) reads the span once and
cuts each point's rows out of it; whatever the counters did (resets, series born late, a sidecar
restart the uptime gauge tells, scrapes skipped or jittered, a target that stops), each point's frame
must be the one `istio_rates(store, window, t)` gives at that point.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from collector import schema as s
from collector.parse.exposition import parse_exposition
from collector.query import istio_rates, istio_rates_range
from collector.store import TelemetryStore

T0 = 1_000_000.0
CODES = ("200", "503", "404")


def _exposition(counts: dict[str, float], buckets: dict[str, float], uptime: float) -> str:
    lines = []
    for code, v in counts.items():
        lab = f'reporter="source",source_workload="productpage-v1",destination_service="reviews",response_code="{code}"'
        lines.append(f"istio_requests_total{{{lab}}} {v}")
    for le, v in buckets.items():
        lines.append(f'istio_request_duration_milliseconds_bucket{{reporter="source",le="{le}"}} {v}')
    lines.append(f"envoy_server_uptime {int(uptime)}")
    return "\n".join(lines) + "\n"


def build_store(seed: int, targets: int, scrapes: int, interval: float) -> TelemetryStore:
    """Targets scraped every `interval` s (jittered, some rounds skipped), counters growing, resetting,
    a code first seen late, one restart per target with the uptime gauge saying so."""
    rng = np.random.default_rng(seed)
    store = TelemetryStore(window_s=24 * 3600, clock=lambda: T0 + scrapes * interval + 600)
    # one parsed scrape is the template (rows: each code's counter, two buckets, the uptime gauge)
    template = parse_exposition(_exposition({c: 0.0 for c in CODES}, {"10": 0.0, "+Inf": 0.0}, 0)).samples
    frames = []
    for k in range(targets):
        counts = np.zeros(len(CODES))
        buckets = np.zeros(2)
        born = np.r_[0, rng.integers(0, scrapes, len(CODES) - 1)]  # the first code from the start, others later
        restart = int(rng.integers(1, scrapes))
        started = T0 - 100
        for i in range(scrapes):
            if rng.random() < 0.1:
                continue  # a round this target missed
            t = T0 + i * interval + float(rng.uniform(-0.3, 0.3))
            if i == restart:
                counts, buckets = np.zeros(len(CODES)), np.zeros(2)
                started = t - float(rng.uniform(0.1, interval))
            counts += rng.integers(0, 20, len(CODES))
            if rng.random() < 0.05:
                counts[0] = float(rng.integers(0, 5))  # a reset the gauge does not explain
            buckets[0] += float(rng.integers(0, 5))
            buckets[1] = buckets[0] + float(rng.integers(0, 5))
            df = template.copy()
            df[s.VALUE] = np.r_[counts, buckets, int(t - started)]
            df = df[np.r_[i >= born, True, True, True]]
            df[s.TIME] = pd.Timestamp(t, unit="s", tz="UTC")
            df[s.TARGET] = f"t{k}"
            frames.append(df)
    store.add_samples(pd.concat(frames, ignore_index=True))
    return store


def _canon(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in frame.columns if c != s.RATE]
    out = frame.astype({c: str for c in keys if c != s.LE}).sort_values(keys, kind="stable")
    return out.reset_index(drop=True)


def assert_same_as_point_by_point(store: TelemetryStore, window: float, start: float, end: float, step: float):
    got = istio_rates_range(store, window, start, end, step)
    n = int(np.floor((end - start) / step + 1e-6))
    want_times = [end - step * i for i in range(n, -1, -1)]
    assert [t for t, _ in got] == want_times
    for t, frame in got:
        want = istio_rates(store, window, t)
        assert len(frame) == len(want), t
        assert frame.dtypes.to_dict() == want.dtypes.to_dict(), t
        a, b = _canon(frame), _canon(want)
        pd.testing.assert_frame_equal(a.drop(columns=[s.RATE]), b.drop(columns=[s.RATE]))
        np.testing.assert_allclose(a[s.RATE].to_numpy(float), b[s.RATE].to_numpy(float), rtol=1e-12, atol=0)


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**31), targets=st.integers(1, 3), window=st.sampled_from([5.0, 10.0, 60.0]),
       step=st.sampled_from([2.5, 5.0, 30.0]), offset=st.floats(-30.0, 30.0))
def test_every_point_equals_its_own_read(seed, targets, window, step, offset):
    store = build_store(seed, targets, scrapes=30, interval=2.0)
    end = T0 + 50 + offset  # points before, across and after the samples
    assert_same_as_point_by_point(store, window, end - 7 * step, end, step)


def test_the_service_page_points_and_an_empty_span():
    store = build_store(7, 2, scrapes=40, interval=1.0)
    window = 60.0
    step = max(window / 2, 5.0)
    end = T0 + 50.3
    got = istio_rates_range(store, window, end - 19 * step, end, step)
    assert len(got) == 20 and sum(len(f) for _, f in got) > 0
    assert_same_as_point_by_point(store, window, end - 19 * step, end, step)
    far = istio_rates_range(store, 10.0, T0 + 10_000, T0 + 10_050, 5.0)
    assert len(far) == 11 and all(f.empty for _, f in far)
    with pytest.raises(ValueError):
        istio_rates_range(store, 10.0, T0, T0 + 10, 0.0)
