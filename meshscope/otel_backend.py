"""The bundled mesh in its OpenTelemetry mode, read the way `meshscope serve` reads a real cluster.

Nothing is tailed or scraped by meshscope itself: the sidecars ship access logs through Envoy's
OpenTelemetry access logger (Istio's `envoyOtelAls`) and traces over OTLP/gRPC to meshscope's
receiver, metrics are read back through a Prometheus server (PromQL, exactly the queries
`ClusterBackend` sends to a cluster's Prometheus), and the config snapshot comes from the mesh.
It proves on one machine that the cluster path explains every 503 as well as the file path.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pandas as pd

from collector.sources.otlp_grpc import OtlpGrpcReceiver
from collector.sources.prom_api import PrometheusClient
from meshscope.cluster import ClusterBackend, ClusterOptions
from mesh.bundled import BundledConfig, BundledMesh


class OtelBundledBackend:
    """A `meshscope.app.Backend`: config from the bundled mesh, logs/traces over OTLP/gRPC, metrics via Prometheus.

    `on_targets(urls)` is told the sidecars' stats URLs once the mesh runs, so whoever runs the
    Prometheus server can point it at them (a cluster's Prometheus discovers pods by itself).
    """

    name = "bundled mesh (OpenTelemetry mode)"

    def __init__(self, config: BundledConfig, prometheus_url: str, grpc_host: str = "127.0.0.1", grpc_port: int = 4317,
                 on_targets: Callable[[list[str]], None] | None = None) -> None:
        self.config = config
        self.grpc_host, self.grpc_port = grpc_host, grpc_port
        self.on_targets = on_targets
        self.metrics = ClusterBackend(ClusterOptions(prometheus_url=prometheus_url), api_client=object(),
                                      prometheus=PrometheusClient(prometheus_url))
        self.receiver: OtlpGrpcReceiver | None = None
        self.mesh: BundledMesh | None = None
        self.store: Any = None

    def start(self, store: Any, otlp_endpoint: str, progress: Callable[[str], None]) -> None:
        self.store = store
        self.receiver = OtlpGrpcReceiver(store, host=self.grpc_host, port=self.grpc_port)
        self.receiver.start()
        progress(f"OTLP/gRPC receiver  {self.receiver.endpoint} (access logs, traces)")
        cfg = replace(self.config, telemetry="otel", otlp_grpc_endpoint=self.receiver.endpoint, otlp_endpoint=None)
        self.mesh = BundledMesh(cfg).start()
        if self.on_targets:
            self.on_targets([t.url for t in self.mesh.scrape_targets()])
        progress(f"bundled mesh        {self.mesh.gateway_url}/productpage (telemetry: OpenTelemetry, no log files)")

    def stop(self) -> None:
        if self.mesh is not None:
            self.mesh.stop()
            self.mesh = None
        if self.receiver is not None:
            self.receiver.stop()
            self.receiver = None

    def snapshot(self) -> Any:
        return self.mesh.snapshot()

    def data_version(self) -> tuple:
        """Moves exactly when an input moves: what the receiver stored (the store's version), the metrics
        Prometheus holds (`ClusterBackend.metrics_version`) or the mesh's config; the live diagnoser skips a
        cycle over equal versions (#18). Raises `PrometheusUnavailable` when Prometheus cannot say."""
        return (self.store.generation() if self.store is not None else None, self.metrics.metrics_version(),
                tuple(map(id, self.mesh.snapshot().objects)) if self.mesh is not None else ())

    def rates(self, window_s: float, end: float | None = None) -> pd.DataFrame:
        return self.metrics.rates(window_s, end)

    def requests(self, start: float, end: float) -> pd.DataFrame | None:
        return None  # the stack reads its store, which the OTLP/gRPC receiver fills
