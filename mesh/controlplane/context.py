"""What every translator needs to know about the proxy it builds config for."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mesh.controlplane.policy import ConfigIndex
from mesh.controlplane.registry import Registry, Workload

XDS_CLUSTER = "xds-grpc"  # Istio's name for the control plane cluster, kept for familiarity
OTLP_CLUSTER = "otlp-collector"
CERT_SECRET = "default"
ROOT_SECRET = "ROOTCA"
# Envoy gives up on a REST xDS poll after this long. The control plane holds an unchanged poll
# for much less (`BundledMesh` passes hold_s=25), so a held answer is never written to a poll
# Envoy has already abandoned, even on a starved machine: a lost answer would look like a NACK.
REST_REQUEST_TIMEOUT = "60s"
UINT32_MAX = 4294967295


@dataclass
class ProxyContext:
    workload: Workload
    registry: Registry
    index: ConfigIndex
    log_path: str
    trust_domain: str = "cluster.local"
    tracing: bool = False
    sampling: float = 100.0
    warnings: list[str] = field(default_factory=list)
    access_log: str = "file"  # "file" (JSON files the collector tails) | "otel" (OpenTelemetry logger over gRPC)

    @property
    def client_namespace(self) -> str:
        return self.workload.namespace


def sds(name: str, refresh: str = "0.05s") -> dict[str, Any]:
    """An SDS reference served by the control plane's REST xDS endpoint (long-polled, see xds_rest)."""
    return {"name": name, "sds_config": {
        "api_config_source": {"api_type": "REST", "transport_api_version": "V3", "cluster_names": [XDS_CLUSTER],
                              "refresh_delay": refresh, "request_timeout": REST_REQUEST_TIMEOUT},
        "resource_api_version": "V3"}}


def rest_source(refresh: str = "0.05s") -> dict[str, Any]:
    return {"api_config_source": {"api_type": "REST", "transport_api_version": "V3", "cluster_names": [XDS_CLUSTER],
                                  "refresh_delay": refresh, "request_timeout": REST_REQUEST_TIMEOUT},
            "resource_api_version": "V3"}


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(h|ms|s|m|us)$")


class ConfigError(ValueError):
    """Istio config the translator cannot turn into Envoy config; the message names the field."""


def duration(value: Any, where: str) -> str:
    """Istio duration ("1.5s", "100ms", "1m") -> Envoy JSON duration ("1.500s")."""
    m = _DURATION.match(str(value).strip()) if value is not None else None
    if not m:
        raise ConfigError(f"{where}: invalid duration {value!r} (use e.g. 100ms, 2s, 1m)")
    n = float(m.group(1)) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}[m.group(2)]
    return f"{n:.6f}".rstrip("0").rstrip(".") + "s"
