"""unknown-host: a VirtualService for details routes to `detail` (a typo): no such service exists.

The route's cluster `outbound|9080||detail.bookinfo.svc.cluster.local` does not
exist, so productpage's calls to details fail with 503 `NC`.
"""
from mesh.scenarios.base import Scenario, svc

SCENARIO = Scenario(
    name="unknown-host",
    description="VirtualService details routes to host 'detail' (typo), which is no service: 503 NC",
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
  - route:
    - destination:
        host: detail
        port:
          number: 9080
""",
    expected_codes=("MS1001", "MS3006"),
    expected_flags=("NC",),
    edge=("productpage-v1", svc("details")),
    blame="VirtualService bookinfo/details",
)
