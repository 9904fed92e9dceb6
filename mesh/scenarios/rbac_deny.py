"""rbac-deny: an AuthorizationPolicy on reviews denies productpage's GETs of /reviews/*.

reviews' sidecar answers 403 (`rbac_access_denied_matched_policy[ns[bookinfo]-policy[reviews-deny-productpage]-rule[0]]`);
productpage's sidecar only sees a 403 from upstream, and the page says reviews are unavailable.
"""
from mesh.scenarios.base import Scenario, svc

SCENARIO = Scenario(
    name="rbac-deny",
    description="AuthorizationPolicy DENY on reviews for productpage's principal: 403 RBAC",
    yaml="""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: reviews-deny-productpage
  namespace: bookinfo
spec:
  selector:
    matchLabels:
      app: reviews
  action: DENY
  rules:
  - from:
    - source:
        principals:
        - cluster.local/ns/bookinfo/sa/bookinfo-productpage
    to:
    - operation:
        methods:
        - GET
        paths:
        - /reviews/*
""",
    expected_codes=("MS3012",),
    expected_flags=(),
    edge=("productpage-v1", svc("reviews")),
    blame="AuthorizationPolicy bookinfo/reviews-deny-productpage",
)
