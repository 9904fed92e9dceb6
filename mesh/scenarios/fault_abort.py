"""fault-abort: a VirtualService injects HTTP 503 into half of productpage's calls to details.

The client sidecar's fault filter answers before any upstream is chosen: 503 with
flag `FI` (fault_filter_abort), upstream host `-`; details itself sees nothing.
"""
from mesh.scenarios.base import Scenario, svc

SCENARIO = Scenario(
    name="fault-abort",
    description="VirtualService details aborts 50% of requests with 503: FI",
    yaml="""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: details
  namespace: bookinfo
spec:
  hosts:
  - details
  http:
  - fault:
      abort:
        httpStatus: 503
        percentage:
          value: 50
    route:
    - destination:
        host: details
        subset: v1
""",
    expected_codes=("MS3010",),
    expected_flags=("FI",),
    edge=("productpage-v1", svc("details")),
    blame="VirtualService bookinfo/details",
)
