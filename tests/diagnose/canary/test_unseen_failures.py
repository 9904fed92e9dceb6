"""A candidate whose pods refuse or drop connections fails its callers where its own sidecar never sees it.

The verdicts counted only what the destination's sidecar reported. A candidate that refuses 40 % of its
connections (a crash loop, a wrong port) answers the rest fine, so its server-side counts are clean and it
was promoted. Its callers' sidecars report those requests (503 with UF/UH/UO, or URX after retries on
them), labelled with the version of the endpoint they picked: they now count against that version. A
failure the server also logged (a per-try timeout, UT,URX) is not counted twice. At 67169a0 the first case
was promoted.
"""
from __future__ import annotations

import pandas as pd
import pytest

from collector import schema
from diagnose.canary import evaluate
from diagnose.canary.verdict import HOLD, PROMOTE, ROLLBACK
from tests.diagnose.canary.test_verdict_classes import WINDOW, _version


def _client_side(ver: str, requests: float, flags: str, code: str = "503") -> dict:
    """What the callers' sidecars report for requests to `ver` that got no answer from its server."""
    return {schema.REPORTER: "source", schema.METRIC: schema.ISTIO_REQUESTS_TOTAL,
            schema.DESTINATION_SERVICE: "cart.shop.svc.cluster.local", schema.DESTINATION_SERVICE_NAMESPACE: "shop",
            schema.DESTINATION_VERSION: ver, schema.RESPONSE_CODE: code, schema.RESPONSE_FLAGS: flags,
            schema.RATE: requests / WINDOW}


def _verdict(*rows) -> object:
    frame = pd.DataFrame([r for group in rows for r in (group if isinstance(group, list) else [group])])
    if schema.RESPONSE_FLAGS in frame.columns:
        frame[schema.RESPONSE_FLAGS] = frame[schema.RESPONSE_FLAGS].fillna("-")
    (v,) = evaluate(frame, WINDOW)
    return v


@pytest.mark.parametrize("flags", ["UF", "UH", "UO", "URX", "URX,UF"])
def test_connection_failures_only_the_callers_see_roll_the_candidate_back(flags) -> None:
    v = _verdict(_version("v1", 4000), _version("v2", 1500), _client_side("v2", 1000, flags))
    assert v.verdict == ROLLBACK, v.reason
    assert v.evidence["requests"]["candidate"] == pytest.approx(2500)
    assert v.evidence["errors"]["candidate"] == pytest.approx(1000)


def test_a_failure_both_sides_logged_is_counted_once_and_a_healthy_candidate_still_promotes() -> None:
    # a per-try timeout: the server logged the attempt too (its own 5xx below); the client's line is not added
    v = _verdict(_version("v1", 4000), _version("v2", 1500, error_rate=0.002), _client_side("v2", 3, "UT,URX", "504"))
    assert v.evidence["requests"]["candidate"] == pytest.approx(1500) and v.verdict in (PROMOTE, HOLD), v.reason
    # the stable version's own connection failures count for it too: the same failure on both is no regression
    v = _verdict(_version("v1", 4000), _version("v2", 1500), _client_side("v1", 80, "UF"), _client_side("v2", 30, "UF"))
    assert v.verdict in (PROMOTE, HOLD), v.reason
    assert v.evidence["errors"] == {"stable": pytest.approx(80), "candidate": pytest.approx(30)}
