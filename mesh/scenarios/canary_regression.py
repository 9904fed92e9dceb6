"""canary-regression: reviews v3 is rolled out as a canary taking 30 % of the traffic, and v3 is a bad build.

The VirtualService splits reviews 70/30 between the stable v2 and the canary v3 (both call
ratings, so their healthy latency is alike); the v3 build answers 500 for 20 % of requests.
Nothing in the config is wrong: the weights are the object to change (send them back to v2),
and the canary verdict (diagnose.canary) should say "roll back" long before v3 takes half the
traffic. The same VirtualService without the bad build is a healthy canary.
"""
from mesh.scenarios.base import Scenario, svc

WEIGHTS_YAML = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: bookinfo
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v2
      weight: 70
    - destination:
        host: reviews
        subset: v3
      weight: 30
"""

SCENARIO = Scenario(
    name="canary-regression",
    description="VirtualService reviews sends 30% to canary v3, a bad build answering 500 to 20% of requests",
    yaml=WEIGHTS_YAML,
    # the canary verdict is what this scenario is about; the 5xx also raise MS3013 on reviews (server side)
    expected_codes=("MS5010",),
    expected_flags=(),
    edge=("productpage-v1", svc("reviews")),
    blame=None,  # the build of reviews-v3 is bad; the VirtualService's weights are what to change back
    behaviors={"reviews-v3": {"error_rate": 0.2, "error_code": 500}},
)
