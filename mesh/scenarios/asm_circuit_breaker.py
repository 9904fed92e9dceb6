"""asm-circuit-breaker: a client-side ASMCircuitBreaker on reviews trips while ratings fails, answering 499.

ratings fails 80 % of requests (a bad deploy); the breaker on reviews' outbound
side (error_percent 50 in a 10 s window, custom status 499) rejects calls to
ratings itself. The bundled control plane programs its equivalent from Envoy's
own parts (admission control + a local-reply status mapper, see
mesh.controlplane.asm), so reviews' sidecar logs local 499s. The diagnosis puts
ratings' failure first and names the breaker and its thresholds for the 499s
(MS6021), not an unexplained 4xx.
"""
from mesh.scenarios.base import Scenario, svc

SCENARIO = Scenario(
    name="asm-circuit-breaker",
    description="ASMCircuitBreaker (client side) on reviews -> ratings, 50 % errors in 10 s, status 499; ratings fails 80 %",
    yaml="""
apiVersion: istio.alibabacloud.com/v1
kind: ASMCircuitBreaker
metadata:
  name: reviews-to-ratings
  namespace: bookinfo
spec:
  workloadSelector:
    labels:
      app: reviews
  applyToTraffic: sidecar_outbound
  configs:
  - name: ratings
    target_services:
    - name: ratings
      port: 9080
    breaker_config:
      window_size: 10s
      break_duration: 30s
      min_request_amount: 3
      error_percent:
        value: 50
      custom_response:
        status_code: 499
        body: circuit open
""",
    # ratings failing is the cause (MS3003, found first); the breaker's 499s are its designed effect, named by MS6021
    expected_codes=("MS3003", "MS6021"),
    expected_flags=(),
    edge=("reviews-v2", svc("ratings")),
    blame=None,  # a failing build of ratings-v1: no config object is at fault; the breaker did its job
    behaviors={"ratings-v1": {"error_rate": 0.8, "error_code": 503}},
)
