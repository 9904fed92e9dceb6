"""timeout: Bookinfo's classic: ratings is delayed 1 s while productpage's route to reviews allows 0.5 s.

Calls that reach reviews v2/v3 (which call ratings) exceed the route timeout:
productpage's sidecar answers 504 `UT` (response_timeout); reviews' sidecar sees
the downstream go away (`DC`).
"""
from mesh.scenarios.base import Scenario, svc

SCENARIO = Scenario(
    name="timeout",
    description="reviews route timeout 0.5s while ratings is delayed 1s: 504 UT on productpage -> reviews",
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
  - timeout: 0.5s
    route:
    - destination:
        host: reviews
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
  namespace: bookinfo
spec:
  hosts:
  - ratings
  http:
  - fault:
      delay:
        fixedDelay: 1s
        percentage:
          value: 100
    route:
    - destination:
        host: ratings
""",
    expected_codes=("MS3008",),
    expected_flags=("UT",),
    edge=("productpage-v1", svc("reviews")),
    blame="VirtualService bookinfo/reviews",
)
