"""A route shift onto a version that fails today: the moved requests would fail as that version's do.

The replay used to report such a shift as info only (MS5004, 0 rps broken) even when the version the traffic
moves to answers 5xx to a fifth of its requests now. The estimate comes from today's observed 5xx share of the
destination's workloads, so it is "at risk", never certain; a healthy or unobserved destination adds nothing.
"""
from __future__ import annotations

import pandas as pd
import pytest

from diagnose.whatif import predict
from diagnose.whatif.run import findings_of
from mesh.config import load_text
from tests.diagnose.whatif.test_replay import _live, _row

ROUTE = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: SUBSET}}]}]
"""


def _window() -> pd.DataFrame:
    pp = {"sa": "bookinfo-productpage"}
    return pd.DataFrame([
        _row("bookinfo", "productpage-v1", "reviews-v1", "reviews", 3.0, **pp),
        _row("bookinfo", "productpage-v1", "reviews-v2", "reviews", 2.0, **pp),
        _row("bookinfo", "productpage-v1", "reviews-v3", "reviews", 0.8, **pp),
        _row("bookinfo", "productpage-v1", "reviews-v3", "reviews", 0.2, code="503", **pp),  # v3 fails 20 % today
    ])


def _predict(subset: str):
    got = load_text(ROUTE.replace("SUBSET", subset), "route.yaml")
    assert not got.problems, got.problems
    return predict(_live(), got.objects, _window(), 3600, findings=False)


def test_all_traffic_onto_the_failing_version_is_at_risk_with_the_estimated_rps() -> None:
    rep = _predict("v3")
    (imp,) = [i for i in rep.impacts if i.kind == "shift_onto_failing"]
    # 6 rps today, 1/30 failing (v3's 0.2 of 6); after: all to v3, 20 % failing -> (0.2 - 1/30) * 6 = 1.0 rps more
    assert imp.broken_rps == pytest.approx(1.0) and not imp.certain
    assert "answers 20.0% of its requests 5xx today" in imp.reason and imp.rule["kind"] == "VirtualService"
    assert rep.broken_rps == 0 and rep.at_risk_rps == pytest.approx(1.0)
    assert any(i.kind == "shift" for i in rep.impacts)  # the shift itself is still reported
    assert [f.code for f in findings_of(rep) if f.code == "MS5008"] == ["MS5008"]


def test_a_shift_onto_a_healthy_version_adds_no_risk() -> None:
    rep = _predict("v1")
    assert not [i for i in rep.impacts if i.kind == "shift_onto_failing"]
    assert rep.at_risk_rps == 0
