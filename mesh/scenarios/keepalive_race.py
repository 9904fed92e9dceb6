"""keepalive-race: details closes idle keep-alive connections sooner than Envoy does; a few requests cross the close.

Envoy keeps upstream HTTP/1.1 connections for an hour (the default upstream idle timeout)
while the app (like Node's 5 s keepAliveTimeout) closes them after a few seconds. A request
Envoy sends on a pooled connection just as the app closes it is reset before any response:
details' sidecar reports `503 UC` with `upstream_reset_before_response_started{connection_termination}`
on its hop to the app, exactly the evidence an mTLS mismatch leaves on a client, but with no TLS
in the picture (istio#55138). The client sidecar's default retry (503) hides most of it from
users. The fix is Envoy-side: DestinationRule `connectionPool.http.idleTimeout` below the app's
keep-alive, or a retry on `reset`.
"""
from mesh.scenarios.base import Scenario, svc

SCENARIO = Scenario(
    name="keepalive-race",
    description="details closes idle keep-alive connections before Envoy does: a few % 503 UC connection_termination",
    yaml="",
    expected_codes=("MS3040",),
    expected_flags=("UC",),
    edge=("productpage-v1", svc("details")),
    blame="DestinationRule bookinfo/details",
    behaviors={"details-v1": {"keepalive_timeout_ms": 5000, "keepalive_race_rate": 0.04}},
)
