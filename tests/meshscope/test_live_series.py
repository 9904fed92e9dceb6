"""Golden-metric series of the live source: percentiles agree with Prometheus' histogram_quantile method."""
import numpy as np
import pandas as pd

from collector import schema as s
from collector.query import histogram_quantile
from meshscope.live_source import _series_from_frames

BUCKET = f"{s.ISTIO_REQUEST_DURATION_MS}_bucket"


def frame(counts, reporter="destination", workload="reviews-v1"):
    bounds = [5.0, 10.0, 25.0, 50.0, 100.0, float("inf")]
    rows = [{s.REPORTER: reporter, s.METRIC: BUCKET, s.LE: b, s.RATE: c, s.RESPONSE_CODE: "200",
             s.DESTINATION_WORKLOAD: workload} for b, c in zip(bounds, counts)]
    rows += [{s.REPORTER: reporter, s.METRIC: s.ISTIO_REQUESTS_TOTAL, s.LE: np.nan, s.RATE: counts[-1] * 0.9,
              s.RESPONSE_CODE: "200", s.DESTINATION_WORKLOAD: workload},
             {s.REPORTER: reporter, s.METRIC: s.ISTIO_REQUESTS_TOTAL, s.LE: np.nan, s.RATE: counts[-1] * 0.1,
              s.RESPONSE_CODE: "503", s.DESTINATION_WORKLOAD: workload}]
    return pd.DataFrame(rows)


def test_series_percentiles_rates_and_errors_per_point():
    frames = [(100.0, frame([1, 3, 6, 8, 9, 10])), (110.0, frame([0, 0, 1, 2, 4, 4])),
              (120.0, frame([0, 0, 0, 0, 0, 0]).iloc[0:0])]
    out = _series_from_frames(frames, {s.DESTINATION_WORKLOAD: "reviews-v1"})
    assert out["t"] == [100.0, 110.0, 120.0]
    for i, (_, f) in enumerate(frames[:2]):
        for q, key in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
            assert out[key][i] == round(float(histogram_quantile(q, f)["value"].iloc[0]), 2)
    assert out["rps"][:2] == [10.0, 4.0] and out["error_pct"][:2] == [10.0, 10.0]
    assert out["rps"][2] == 0.0 and out["p95"][2] is None  # no traffic at that point


def test_other_workloads_rows_are_not_counted():
    both = pd.concat([frame([1, 3, 6, 8, 9, 10]), frame([0, 0, 0, 0, 50, 50], workload="ratings-v1")])
    out = _series_from_frames([(1.0, both)], {s.DESTINATION_WORKLOAD: "reviews-v1"})
    assert out["rps"] == [10.0] and out["p50"] == [round(float(histogram_quantile(0.5, frame([1, 3, 6, 8, 9, 10]))["value"].iloc[0]), 2)]
