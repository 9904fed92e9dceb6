"""outlier-ejection: a bad details deploy fails 60% of requests; outlier detection ejects its only host.

After 3 consecutive 5xx the host is ejected for 30 s and, with Istio's panic
threshold of 0, productpage's calls fail fast with 503 `UH` (no_healthy_upstream)
until it is readmitted. Before ejection, Istio's default retries on 503 show as `URX`.
"""
from mesh.scenarios.base import Scenario, svc

SCENARIO = Scenario(
    name="outlier-ejection",
    description="details returns 503 for 60% of requests and outlierDetection ejects it: 503 UH",
    yaml="""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: details
  namespace: bookinfo
spec:
  host: details
  trafficPolicy:
    outlierDetection:
      consecutive5xxErrors: 3
      interval: 1s
      baseEjectionTime: 30s
      maxEjectionPercent: 100
  subsets:
  - name: v1
    labels:
      version: v1
""",
    expected_codes=("MS3004",),
    expected_flags=("UH",),
    edge=("productpage-v1", svc("details")),
    blame="DestinationRule bookinfo/details",
    behaviors={"details-v1": {"error_rate": 0.6, "error_code": 503}},
)
