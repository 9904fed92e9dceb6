"""A canary failing on one path only: the window's error rate hides it, the access logs per path do not."""
from __future__ import annotations

import numpy as np
import pandas as pd

from collector import schema
from diagnose.canary.paths import normalise
from diagnose.canary.steps import judge
from diagnose.canary.verdict import HOLD, PROMOTE, ROLLBACK
from tests.diagnose.canary.test_verdict_classes import _version

HOST = "cart.shop.svc.cluster.local"
NOW = 1_700_000_000.0


def _logs(ver: str, per_path: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """Destination-side access-log rows of one version: path -> (requests, of which 500)."""
    rows = []
    for path, (n, bad) in per_path.items():
        codes = np.array(["500"] * bad + ["200"] * (n - bad))
        rows.append(pd.DataFrame({schema.REPORTER: "destination", schema.DESTINATION_SERVICE: HOST,
                                  schema.DESTINATION_WORKLOAD: f"cart-{ver}", schema.DESTINATION_WORKLOAD_NAMESPACE: "shop",
                                  schema.PATH: path, schema.RESPONSE_CODE: codes}))
    return pd.concat(rows, ignore_index=True)


def _judge(stable_err: float, cand_err: float, logs: pd.DataFrame | None):
    rates = pd.DataFrame(_version("v1", 50_000, error_rate=stable_err) + _version("v2", 20_000, error_rate=cand_err))
    (v,) = judge(lambda w, end=None: rates, [], "istio-system", None, 600.0, NOW,
                 requests=None if logs is None else (lambda start, end: logs))
    return v


def test_a_candidate_failing_only_on_one_small_path_is_rolled_back_naming_it() -> None:
    logs = pd.concat([_logs("v1", {"/api/cart": (49_850, 0), "/api/export?fmt=csv": (150, 0)}),
                      _logs("v2", {"/api/cart": (19_940, 0), "/api/export?fmt=xlsx": (60, 60)})])
    v = _judge(0.0, 60 / 20_000, logs)
    assert v.verdict == ROLLBACK, v.reason
    assert "/api/export fails 100.0% of 60 requests vs 0.0%" in v.reason and "hides it" in v.reason
    assert v.evidence["paths"][0]["path"] == "/api/export" and v.evidence["paths"][0]["regressed"]
    # without the access logs the same metrics are held (significant, under the margin), never promoted
    assert _judge(0.0, 60 / 20_000, None).verdict == HOLD


def test_a_path_failing_for_both_versions_or_with_too_few_requests_is_not_charged_to_the_candidate() -> None:
    shared = pd.concat([_logs("v1", {"/api/cart": (49_000, 0), "/api/export": (1000, 50)}),
                        _logs("v2", {"/api/cart": (19_600, 0), "/api/export": (400, 20)})])
    assert _judge(50 / 50_000, 20 / 20_000, shared).verdict == PROMOTE
    few = pd.concat([_logs("v1", {"/api/cart": (50_000, 0), "/api/rare": (5, 0)}),
                     _logs("v2", {"/api/cart": (20_000, 0), "/api/rare": (5, 5)})])
    v = _judge(0.0, 0.0, few)
    assert v.verdict == PROMOTE, v.reason
    assert [p["path"] for p in v.evidence["paths"]] == ["/api/cart"]  # 5 requests a side: not judged


def test_ids_and_query_strings_fold_into_one_path() -> None:
    got = normalise(pd.Series(["/items/1234?x=1", "/items/99", "/items/3fa85f64-5717-4562-b3fc-2c963f66afa6",
                               "/items/list"]))
    assert list(got) == ["/items/{id}", "/items/{id}", "/items/{id}", "/items/list"]
