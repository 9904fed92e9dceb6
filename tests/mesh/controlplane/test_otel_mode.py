"""The OpenTelemetry telemetry mode as Envoy config (no Envoy needed): no file logger anywhere, every
access logger (HTTP and listener-level) is Envoy's OpenTelemetry logger over gRPC in Istio's envoyOtelAls
shape, traces go over OTLP/gRPC, and the bootstrap has the HTTP/2 cluster to meshscope's receiver."""
from __future__ import annotations

import json
from pathlib import Path

from mesh.controlplane.bootstrap import build_bootstrap
from mesh.controlplane.ca import MeshCA
from mesh.controlplane.registry import Registry
from mesh.controlplane.telemetry import ISTIO_TEXT_FORMAT, OTLP_GRPC_CLUSTER
from mesh.controlplane.translate import LDS, translate
from mesh.demo.config import demo_objects


def _proxies(mode: str):
    objects = demo_objects()
    reg = Registry(allocate=iter(range(30000, 31000)).__next__)
    reg.update(objects)
    reg.gateway_ports = {8080: 8080}
    ca = MeshCA()
    certs = {w.key: ca.issue(w.namespace, w.service_account) for w in reg.workloads}
    return reg, translate(objects, reg, certs, ca.root_pem, Path("/tmp/logs"), tracing=mode == "otel", access_log=mode)


def _loggers(listeners: list[dict]) -> list[dict]:
    """Every access logger in the listeners (listener-level and in each HTTP connection manager)."""
    out = []
    for lst in listeners:
        out += lst.get("access_log", [])
        for chain in lst.get("filter_chains", []):
            for f in chain.get("filters", []):
                out += f.get("typed_config", {}).get("access_log", [])
    return out


def test_otel_mode_has_no_file_logger_and_ships_istio_shaped_records():
    reg, proxies = _proxies("otel")
    for w in reg.workloads:
        listeners = list(proxies[w.node_id].resources[LDS].values())
        names = [x["name"] for x in _loggers(listeners)]
        assert "envoy.access_loggers.file" not in names, w.name
        otel = [x["typed_config"] for x in _loggers(listeners) if x["name"] == "envoy.access_loggers.open_telemetry"]
        assert otel, w.name
        cfg = otel[0]
        assert cfg["grpc_service"]["envoy_grpc"]["cluster_name"] == OTLP_GRPC_CLUSTER
        assert cfg["body"]["string_value"] == ISTIO_TEXT_FORMAT
        labels = {kv["key"]: kv["value"]["string_value"] for kv in cfg["attributes"]["values"]}
        assert labels["response_code"] == "%RESPONSE_CODE%" and labels["upstream_cluster"] == "%UPSTREAM_CLUSTER_RAW%"
        assert (labels["workload"], labels["namespace"]) == (w.name, w.namespace)
        tracers = [f["typed_config"]["tracing"]["provider"]["typed_config"] for lst in listeners
                   for ch in lst.get("filter_chains", []) for f in ch.get("filters", [])
                   if "tracing" in f.get("typed_config", {})]
        assert tracers and all(t["grpc_service"]["envoy_grpc"]["cluster_name"] == OTLP_GRPC_CLUSTER for t in tracers)
    # the listener-level logger keeps its filter (failed connections only) in the OTel mode too
    inbound = [lst for lst in proxies[reg.workloads[0].node_id].resources[LDS].values() if lst["name"].startswith("inbound")]
    for lst in inbound:
        assert lst["access_log"][0]["name"] == "envoy.access_loggers.open_telemetry" and "filter" in lst["access_log"][0]


def test_file_mode_is_unchanged():
    reg, proxies = _proxies("file")
    names = {x["name"] for w in reg.workloads for x in _loggers(list(proxies[w.node_id].resources[LDS].values()))}
    assert "envoy.access_loggers.file" in names and "envoy.access_loggers.open_telemetry" not in names


def test_bootstrap_has_an_http2_cluster_to_the_receiver(tmp_path):
    reg, _ = _proxies("otel")
    w = reg.workloads[0]
    boot = build_bootstrap(w, 15010, tmp_path, "ROOT", "spiffe://cluster.local/ns/istio-system/sa/istiod",
                           otlp_grpc=("127.0.0.1", 4317))
    c = next(c for c in boot["static_resources"]["clusters"] if c["name"] == OTLP_GRPC_CLUSTER)
    assert "http2_protocol_options" in json.dumps(c)
    assert c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"] == 4317
    assert not [c for c in build_bootstrap(w, 15010, tmp_path, "ROOT", "x")["static_resources"]["clusters"]
                if c["name"] == OTLP_GRPC_CLUSTER]
