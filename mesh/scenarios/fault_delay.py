"""fault-delay: a VirtualService delays every call to ratings by 300 ms (flag `DI`).

Requests still succeed; the latency shows on reviews v2/v3 -> ratings and, through
them, on productpage.
"""
from mesh.scenarios.base import Scenario, svc

SCENARIO = Scenario(
    name="fault-delay",
    description="VirtualService ratings injects a 300 ms delay into every request: DI",
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
  - fault:
      delay:
        fixedDelay: 300ms
        percentage:
          value: 100
    route:
    - destination:
        host: ratings
        subset: v1
""",
    expected_codes=("MS3011",),
    expected_flags=("DI",),
    edge=("reviews-v2", svc("ratings")),
    blame="VirtualService bookinfo/ratings",
)
