"""asm-rate-limit: an Alibaba Cloud ASM ASMLocalRateLimiter caps ratings at 2 requests per second per proxy.

The bundled control plane programs it as ASM does, with Envoy's local rate limit
filter on ratings' inbound listener: requests beyond the bucket get 429 with flag
RL and details `local_rate_limited`, which reviews sees as a plain 429. The
diagnosis must name the limiter and its quota (MS6020), not a generic 4xx.
"""
from mesh.scenarios.base import Scenario, svc

SCENARIO = Scenario(
    name="asm-rate-limit",
    description="ASMLocalRateLimiter on ratings: quota 2 per 1s per proxy, below the traffic it gets: 429 RL",
    yaml="""
apiVersion: istio.alibabacloud.com/v1
kind: ASMLocalRateLimiter
metadata:
  name: ratings-limit
  namespace: bookinfo
spec:
  workloadSelector:
    labels:
      app: ratings
  configs:
  - name: all
    match:
      vhost:
        name: "*"
        port: 9080
    limit:
      fill_interval:
        seconds: 1
      quota: 2
""",
    expected_codes=("MS6020",),
    expected_flags=("RL",),
    edge=("reviews-v2", svc("ratings")),
    blame="ASMLocalRateLimiter bookinfo/ratings-limit",
)
