"""rbac-deny: an AuthorizationPolicy on ratings denies GET from the reviews service account.

ratings' sidecar answers 403 (`rbac_access_denied_matched_policy[ns[bookinfo]-policy[ratings-deny-reviews]-rule[0]]`);
reviews' sidecar only sees a 403 from upstream. reviews v2/v3 degrade to "ratings unavailable".
"""
from mesh.scenarios.base import Scenario, svc

SCENARIO = Scenario(
    name="rbac-deny",
    description="AuthorizationPolicy DENY on ratings for principal bookinfo-reviews: 403 RBAC",
    yaml="""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ratings-deny-reviews
  namespace: bookinfo
spec:
  selector:
    matchLabels:
      app: ratings
  action: DENY
  rules:
  - from:
    - source:
        principals:
        - cluster.local/ns/bookinfo/sa/bookinfo-reviews
    to:
    - operation:
        methods:
        - GET
""",
    expected_codes=("MS3012",),
    expected_flags=(),
    edge=("reviews-v2", svc("ratings")),
    blame="AuthorizationPolicy bookinfo/ratings-deny-reviews",
)
