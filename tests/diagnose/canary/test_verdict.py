"""Canary verdicts from per-version request counts and duration histograms (the rate frame's shape)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collector import schema
from diagnose.canary import evaluate
from diagnose.canary.verdict import INSUFFICIENT, PROMOTE, ROLLBACK, HOLD, mann_whitney

LE = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, np.inf)
WINDOW = 600.0


def _version(host: str, ver: str, requests: float, error_rate: float, typical_ms: float) -> list[dict]:
    """Rates (per second over WINDOW) of one version: 200s, 503s and cumulative duration buckets."""
    base = {schema.REPORTER: "destination", schema.DESTINATION_SERVICE: f"{host}.shop.svc.cluster.local",
            schema.DESTINATION_SERVICE_NAMESPACE: "shop", schema.DESTINATION_VERSION: ver, schema.LE: np.nan}
    r = requests / WINDOW
    rows = [{**base, schema.METRIC: schema.ISTIO_REQUESTS_TOTAL, schema.RESPONSE_CODE: "200", schema.RATE: r * (1 - error_rate)},
            {**base, schema.METRIC: schema.ISTIO_REQUESTS_TOTAL, schema.RESPONSE_CODE: "503", schema.RATE: r * error_rate}]
    for le in LE:
        share = 1.0 if np.isinf(le) else 1.0 - np.exp(-le / typical_ms)
        rows.append({**base, schema.METRIC: f"{schema.ISTIO_REQUEST_DURATION_MS}_bucket", schema.RESPONSE_CODE: "200",
                     schema.LE: le, schema.RATE: r * share})
    return rows


def _frame(*versions: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([row for v in versions for row in v])


def _one(frame: pd.DataFrame):
    got = evaluate(frame, WINDOW)
    assert len(got) == 1
    return got[0]


def test_error_regression_rolls_back_with_evidence() -> None:
    v = _one(_frame(_version("cart", "v1", 4000, 0.005, 40), _version("cart", "v2", 1000, 0.08, 40)))
    assert (v.stable, v.candidate, v.verdict) == ("v1", "v2", ROLLBACK)
    assert v.confidence > 0.999 and "error rate 8.00% vs 0.50%" in v.reason
    assert v.evidence["requests"]["candidate"] == pytest.approx(1000)


def test_latency_regression_rolls_back_on_p95() -> None:
    v = _one(_frame(_version("cart", "v1", 4000, 0.0, 30), _version("cart", "v2", 1000, 0.0, 90)))
    assert v.verdict == ROLLBACK and "p95" in v.reason
    lat = v.evidence["latency_ms"]["p95"]
    assert lat["candidate"] > 2 * lat["stable"]


def test_equal_canary_with_enough_requests_is_promoted() -> None:
    v = _one(_frame(_version("cart", "v1", 4000, 0.01, 40), _version("cart", "v2", 800, 0.01, 40)))
    assert v.verdict == PROMOTE and v.confidence > 0.5


def test_too_little_traffic_says_so() -> None:
    v = _one(_frame(_version("cart", "v1", 4000, 0.0, 40), _version("cart", "v2", 30, 0.5, 400)))
    assert v.verdict == INSUFFICIENT and "too little traffic" in v.reason and v.confidence == 0.0


def test_few_errors_on_few_requests_are_not_evidence_but_hold() -> None:
    v = _one(_frame(_version("cart", "v1", 4000, 0.005, 40), _version("cart", "v2", 200, 0.01, 40)))
    assert v.verdict == HOLD and v.evidence["error_p_value"] > 0.05  # 2 of 200 vs 20 of 4000: exact test


def test_verdict_updates_as_data_arrives() -> None:
    """The same bad version: too early to tell, then roll back once the counts are there."""
    early = _one(_frame(_version("cart", "v1", 500, 0.01, 40), _version("cart", "v2", 50, 0.06, 40)))
    later = _one(_frame(_version("cart", "v1", 5000, 0.01, 40), _version("cart", "v2", 1500, 0.06, 40)))
    assert (early.verdict, later.verdict) == (INSUFFICIENT, ROLLBACK)


def test_only_split_services_and_every_candidate() -> None:
    f = _frame(_version("cart", "v1", 4000, 0.0, 40), _version("cart", "v2", 1000, 0.0, 40),
               _version("cart", "v3", 1000, 0.2, 40), _version("pay", "v1", 4000, 0.0, 40))
    got = {(v.service.split(".")[0], v.candidate): v.verdict for v in evaluate(f, WINDOW)}
    assert got == {("cart", "v2"): PROMOTE, ("cart", "v3"): ROLLBACK}


def test_mann_whitney_is_symmetric_and_detects_shift() -> None:
    a = np.array([[100.0, 50, 10, 0]])
    assert mann_whitney(a, a)[0] == pytest.approx(0.5)
    assert mann_whitney(a, np.array([[10.0, 50, 100, 0]]))[0] < 1e-6
    assert mann_whitney(np.array([[10.0, 50, 100, 0]]), a)[0] > 1 - 1e-6


def test_regressing_canary_is_a_finding_on_the_weights_with_rollback_yaml() -> None:
    import yaml as _yaml

    from diagnose.canary.findings import findings_of
    from mesh.config import load_text

    objs = load_text("""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cart, namespace: shop}
spec:
  hosts: [cart]
  http:
  - route:
    - {destination: {host: cart, subset: stable}, weight: 70}
    - {destination: {host: cart, subset: canary}, weight: 30}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cart, namespace: shop}
spec:
  host: cart
  subsets:
  - {name: stable, labels: {version: v1}}
  - {name: canary, labels: {version: v2}}
""", "cart.yaml").objects
    verdicts = evaluate(_frame(_version("cart", "v1", 4000, 0.005, 40), _version("cart", "v2", 1000, 0.08, 40)), WINDOW)
    [f] = findings_of(verdicts, objs)
    assert f.code == "MS5010" and f.resource.name == "cart" and f.resource.path == "spec/http[0]/route"
    assert f.evidence["weights"] == {"stable": 70, "canary": 30}
    back = _yaml.safe_load(f.evidence["rollback_yaml"])
    assert [d["weight"] for d in back["spec"]["http"][0]["route"]] == [100, 0]


def test_same_verdicts_from_categorical_or_plain_labels_and_stray_series_ignored() -> None:
    """Labels arrive as categoricals from the store and as strings from Prometheus; bucket series of a
    version with no request series (or no version label) must not shift anyone's histogram."""
    f = _frame(_version("cart", "v1", 4000, 0.0, 30), _version("cart", "v2", 1000, 0.0, 90),
               _version("cart", "v3", 1000, 0.08, 30))
    stray = _frame(_version("cart", "v9", 1000, 0.0, 900))
    stray = stray[stray[schema.METRIC] != schema.ISTIO_REQUESTS_TOTAL]
    nolabel = _frame(_version("cart", "unknown", 5000, 0.5, 900))
    plain = pd.concat([f, stray, nolabel], ignore_index=True)
    cat = plain.copy()
    for c in (schema.DESTINATION_SERVICE, schema.DESTINATION_VERSION, schema.RESPONSE_CODE, schema.REPORTER):
        cat[c] = cat[c].astype("category")

    def key(frame):
        return [(v.candidate, v.verdict, v.reason) for v in evaluate(frame, WINDOW)]

    assert key(plain) == key(cat) == key(f)
    assert [v for _, v, _ in key(f)] == [ROLLBACK, ROLLBACK]  # v2 on p95, v3 on errors
