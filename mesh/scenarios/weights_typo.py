"""weights-typo: a canary meant as 90/10 (v1/v3) was typed 90/100, so v3 gets ~53% of reviews traffic.

Nothing fails, so no response flag: the evidence is the traffic split itself
(istio_requests_total by destination_version) and the config rule on weights.
"""
from mesh.scenarios.base import Scenario, svc

SCENARIO = Scenario(
    name="weights-typo",
    description="VirtualService reviews weights 90/100 instead of 90/10: the canary v3 takes most traffic",
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
        subset: v1
      weight: 90
    - destination:
        host: reviews
        subset: v3
      weight: 100
""",
    expected_codes=("MS1006",),
    expected_flags=(),
    edge=("productpage-v1", svc("reviews")),
    blame="VirtualService bookinfo/reviews",
)
