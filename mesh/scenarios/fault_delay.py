"""fault-delay: a VirtualService delays reviews-v2's calls to ratings by 300 ms (flag `DI`).

The fault matches on `sourceLabels`, so only the reviews-v2 sidecar injects it:
one edge (reviews-v2 -> ratings) carries the delay, and productpage is slower
whenever it lands on v2. Requests still succeed.
"""
from mesh.scenarios.base import Scenario, svc

SCENARIO = Scenario(
    name="fault-delay",
    description="VirtualService ratings delays requests from reviews v2 by 300 ms: DI",
    yaml="""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
  namespace: bookinfo
spec:
  hosts:
  - ratings
  http:
  - match:
    - sourceLabels:
        app: reviews
        version: v2
    fault:
      delay:
        fixedDelay: 300ms
        percentage:
          value: 100
    route:
    - destination:
        host: ratings
        subset: v1
  - route:
    - destination:
        host: ratings
        subset: v1
""",
    expected_codes=("MS3011",),
    expected_flags=("DI",),
    edge=("reviews-v2", svc("ratings")),
    blame="VirtualService bookinfo/ratings",
)
