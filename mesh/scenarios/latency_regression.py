"""latency-regression: a new details build is 250 ms slower; no error, no flag, only latency.

Every productpage request waits for details, so the page's p99 moves from ~20 ms
to ~270 ms: an SLO on productpage latency burns its budget while every response
is a 200. The evidence is the duration histogram, not a response flag.
"""
from mesh.scenarios.base import Scenario, svc

SCENARIO = Scenario(
    name="latency-regression",
    description="details answers 250 ms slower (a bad deploy): latency SLO on productpage breaches, all 200s",
    yaml="",
    expected_codes=("MS3014", "MS4001"),
    expected_flags=(),
    edge=("productpage-v1", svc("details")),
    blame=None,  # a slow build of details-v1: no Istio object is at fault
    behaviors={"details-v1": {"extra_latency_ms": 250}},
)
