"""missing-subset: a VirtualService routes reviews to subset v4, which no DestinationRule defines.

The route points at cluster `outbound|9080|v4|reviews...` that does not exist:
Envoy answers 503 `NC` (cluster_not_found) for every request to reviews.
"""
from mesh.scenarios.base import Scenario, svc

SCENARIO = Scenario(
    name="missing-subset",
    description="VirtualService reviews -> subset v4 that the DestinationRule does not define: 503 NC",
    yaml="""
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
        subset: v4
""",
    expected_codes=("MS1002", "MS3006"),
    expected_flags=("NC",),
    edge=("productpage-v1", svc("reviews")),
    blame="VirtualService bookinfo/reviews",
)
