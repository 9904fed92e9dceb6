"""circuit-breaker: details allows 1 connection and 1 pending request; traffic arrives 4 at a time.

Requests beyond the limits are refused by the client sidecar itself: 503 `UO`
(overflow), counted in `upstream_rq_pending_overflow`. details is made a bit slow
(40 ms, a stand-in for a busy backend) so concurrent requests overlap.
"""
from mesh.scenarios.base import Scenario, svc

SCENARIO = Scenario(
    name="circuit-breaker",
    description="DestinationRule details connectionPool 1 connection / 1 pending under concurrent load: 503 UO",
    yaml="""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: details
  namespace: bookinfo
spec:
  host: details
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 1
      http:
        http1MaxPendingRequests: 1
        maxRequestsPerConnection: 1
  subsets:
  - name: v1
    labels:
      version: v1
""",
    expected_codes=("MS3007",),
    expected_flags=("UO",),
    edge=("productpage-v1", svc("details")),
    blame="DestinationRule bookinfo/details",
    behaviors={"details-v1": {"extra_latency_ms": 40}},
    traffic_concurrency=4,
)
