"""mtls-mismatch: reviews requires mTLS (STRICT) while a DestinationRule makes its clients send plaintext.

The server's inbound listener has only its TLS filter chain, so the plaintext
connection matches no chain and is closed: productpage's sidecar reports 503 `UC`
(connect succeeded, so no retry), reviews' listener log shows the failed TLS.
"""
from mesh.scenarios.base import Scenario, svc

SCENARIO = Scenario(
    name="mtls-mismatch",
    description="PeerAuthentication STRICT on reviews, DestinationRule tls DISABLE for its clients: 503 UC",
    yaml="""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: reviews-strict
  namespace: bookinfo
spec:
  selector:
    matchLabels:
      app: reviews
  mtls:
    mode: STRICT
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: bookinfo
spec:
  host: reviews
  trafficPolicy:
    tls:
      mode: DISABLE
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
  - name: v3
    labels:
      version: v3
""",
    expected_codes=("MS2010", "MS3001"),
    expected_flags=("UC",),
    edge=("productpage-v1", svc("reviews")),
    blame="DestinationRule bookinfo/reviews",
)
