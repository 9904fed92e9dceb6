"""The composition root: one object that runs everything `meshscope up` and `meshscope serve` show.

It wires the five packages in their dependency order and owns their lifecycle:

    backend (where config and telemetry come from) -> collector store (+ OTLP receiver)
      -> topology (graphs on demand) -> diagnose (live loop, SLOs, alerts)
      -> dashboard (UI + API over a live data source)

A *backend* is the one thing that differs between the two commands: the bundled
mesh (`BundledBackend`: real Envoy sidecars scraped and tailed into the local
store) or a real cluster (`meshscope.cluster.ClusterBackend`: the Kubernetes API
for config, Prometheus for metrics). Everything above it is shared. Nothing
below this module imports it.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

log = logging.getLogger("meshscope")

DEMO_SLOS = Path(__file__).resolve().parents[1] / "diagnose" / "slo" / "demo_slos.yaml"
Progress = Callable[[str], None]


@dataclass
class StackOptions:
    """What runs around the backend; defaults are the documented ports."""

    host: str = "127.0.0.1"
    port: int = 8050  # UI and API; 0 = any free
    otlp_port: int = 4318  # meshscope's OTLP/HTTP receiver; 0 = any free
    otlp_host: str = "127.0.0.1"  # in a cluster pods must reach it: `serve` binds it with the UI's host
    otlp_token: str | None = None  # required beyond loopback: senders send `Authorization: Bearer <it>`
    otlp_unauthenticated: bool = False  # beyond loopback without a token, as the operator explicitly asked
    otlp_grpc_port: int | None = None  # OTLP/gRPC receiver (Envoy OTel access logs, traces): `serve` uses 4317; None = off
    data_dir: Path = Path(".meshscope")
    token: str | None = None  # required when host is not loopback
    diagnose_interval: float = 2.0
    refresh_s: float = 5.0  # UI auto-refresh
    slo_paths: list[Path] = field(default_factory=list)
    alerts_config: Path | None = None
    ui: bool = True
    # memory budget of the telemetry store (in-memory Arrow; older rows stay on disk in the window and are
    # read back from there): ~8 minutes of the demo at 10 rps (~12 MB/min with span attributes
    # dictionary-encoded; 128 MiB held as long when they were plain strings), see docs/bundled-mesh.md
    store_max_bytes: int = 96 * 2**20
    # how far back the store keeps telemetry (on disk; memory holds what fits in store_max_bytes and
    # older windows are read back from the segments): the pages' ?end=/?window= reach this far
    store_window_s: float = 24 * 3600.0
    trace_sample: float = 1.0  # share of traces the OTLP receivers keep (whole traces, by trace id)
    trace_batch: bool = False  # exports already waiting decoded and stored together (no linger; no gain measured, #18)


class Backend(Protocol):
    """Where config and telemetry come from."""

    name: str

    def start(self, store: Any, otlp_endpoint: str, progress: Progress) -> None: ...

    def stop(self) -> None: ...

    def snapshot(self) -> Any:
        """The current config as a `mesh.config.Snapshot`."""

    def rates(self, window_s: float, end: float | None = None) -> pd.DataFrame:
        """The Istio rate frame over the window (collector contract)."""

    def requests(self, start: float, end: float) -> pd.DataFrame | None:
        """Per-request rows (access logs) when this backend has them, else None."""


class Stack:
    """The running parts. `start()` returns once the UI answers; `stop()` undoes it all, newest first."""

    def __init__(self, backend: Backend, options: StackOptions | None = None):
        self.backend = backend
        self.options = options or StackOptions()
        self.store = None
        self.otlp = None
        self.otlp_grpc = None
        self.diagnoser = None
        self.alerts = None
        self.source = None
        self.ui = None
        self._started: list[tuple[str, Callable[[], None]]] = []
        self._stopped = threading.Event()

    def _journal(self) -> Any:
        """The config journal: the bundled mesh's, or the one a cluster backend writes (None: none)."""
        mesh = getattr(self.backend, "mesh", None)
        return getattr(mesh, "journal", None) if mesh is not None else getattr(self.backend, "journal", None)

    def _changes_before(self, findings: list, now: float) -> None:
        """Each open runtime/SLO finding carries the config changes before its onset (diagnose.changes)."""
        from diagnose.changes import annotate_findings
        annotate_findings(findings, self._journal(), now)

    def start(self, progress: Progress = lambda msg: None) -> "Stack":
        from collector.sources.otlp import OtlpReceiver
        from collector.store import TelemetryStore
        from diagnose.live import LiveDiagnoser, LiveSources
        from diagnose.live.tracker import STATE_FILE

        o = self.options
        data = Path(o.data_dir)
        data.mkdir(parents=True, exist_ok=True)
        try:
            self.store = TelemetryStore(data_dir=data / "telemetry", window_s=o.store_window_s,
                                        max_bytes=o.store_max_bytes)
            self._started.append(("store", self.store.close))
            # trace batches never linger: an exporter that sends one export at a time (an OpenTelemetry
            # Collector with one worker, the test suite's forwarder) waited a whole linger per export, so
            # it was held to one export a second and its spans reached the store minutes late (#18)
            self.otlp = OtlpReceiver(self.store, host=o.otlp_host, port=o.otlp_port, trace_sample=o.trace_sample,
                                     trace_batch=o.trace_batch, token=o.otlp_token,
                                     unauthenticated=o.otlp_unauthenticated)
            self.otlp.start()
            self._started.append(("otlp receiver", self.otlp.stop))
            progress(f"OTLP/HTTP receiver  {self.otlp.endpoint}/v1/traces")
            if o.otlp_grpc_port is not None:  # Istio's envoyOtelAls access logs and OTLP traces (docs/cluster.md)
                from collector.sources.otlp_grpc import OtlpGrpcReceiver

                self.otlp_grpc = OtlpGrpcReceiver(self.store, host=o.otlp_host, port=o.otlp_grpc_port,
                                                  token=o.otlp_token, unauthenticated=o.otlp_unauthenticated)
                self.otlp_grpc.start()
                self._started.append(("otlp/grpc receiver", self.otlp_grpc.stop))
                progress(f"OTLP/gRPC receiver  {self.otlp_grpc.endpoint} (access logs, traces)")
            if hasattr(self.backend, "journal") and self.backend.journal is None:  # a cluster's config journal
                from mesh.journal import open_journal
                self.backend.journal = open_journal(data)
            self.backend.start(self.store, self.otlp.endpoint, progress)
            self._started.append((self.backend.name, self.backend.stop))
            from meshscope import crashes

            crashes.expose(self.backend)  # sidecar restarts on /metrics
            from meshscope import threads

            threads.expose()  # CPU per thread group on /metrics: where an idle process's CPU goes (#18)
            from diagnose.canary import live as canary_live
            from diagnose.canary.steps import journal_of
            from diagnose.live.sources import combine_extra

            extra = combine_extra(crashes.finding_source(self.backend),  # crash loops are findings
                                  canary_live.finding_source(self.backend.rates, self.backend.snapshot,
                                                             journal=lambda: journal_of(self.backend),
                                                             pairs=getattr(self.backend, "serving_pairs", None),
                                                             requests=getattr(self.backend, "requests", None)))
            sources = LiveSources(requests=self._requests, rates=self.backend.rates, snapshot=self.backend.snapshot,
                                  extra=extra)  # and so are canaries to roll back or promote
            backend_version = getattr(self.backend, "data_version", None)  # None: evaluate every cycle
            # steady: telemetry that shows no trouble is diagnosed every idle interval, not every cycle (#18)
            self.diagnoser = LiveDiagnoser(sources, interval_s=o.diagnose_interval, retention_s=o.store_window_s,
                                           steady=True, data_version=None if backend_version
                                           is None else lambda: (self.store.generation("requests"), backend_version()))
            self.diagnoser.tracker.persist_to(data / "diagnose" / STATE_FILE)  # open findings survive a kill -9
            from diagnose.live.episodes import journal_changed  # a fault cleared and applied again is news, not a flap
            self.diagnoser.tracker.changed = journal_changed(self._journal)
            self.diagnoser.tracker.interval_s = o.diagnose_interval  # quiet time, not slow cycles, resolves
            self.diagnoser.subscribe(self._changes_before)  # before alerts subscribe: they carry what changed
            self.diagnoser.slo_engine.persist_to(data / "slo")  # budgets and alert state survive restarts
            self._started.append(("slo state", self.diagnoser.slo_engine.save))  # saved once more after the loop stops
            slo_files = [str(p) for p in o.slo_paths if Path(p).exists()]
            for missing in sorted({str(p) for p in o.slo_paths} - set(slo_files)):
                progress(f"SLOs                {missing}: no such file, skipped")
            if slo_files:
                loaded = self.diagnoser.load_slos(slo_files)
                progress(f"SLOs                {len(loaded.slos)} loaded from {', '.join(slo_files)}")
            self.diagnoser.start()
            self._started.append(("diagnoser", self.diagnoser.stop))
            if o.alerts_config:
                from diagnose.alerts import AlertDispatcher

                self.alerts, loaded_alerts = AlertDispatcher.from_file(o.alerts_config, data / "alerts")
                for p in getattr(loaded_alerts, "problems", []):
                    progress(f"alerts config: {p}")
                self.diagnoser.subscribe(lambda findings, now: self.alerts.process(findings, now))
                self.alerts.start()
                self._started.append(("alerts", self.alerts.close))  # stops senders, closes the outbox
            if o.ui:
                from dashboard import server
                from meshscope.live_source import LiveSource

                self.source = LiveSource(self)
                self.diagnoser.subscribe(self.source.refresh_findings)  # each cycle's findings laid out off the request path
                self.ui = server.start(self.source, o.host, o.port, o.token, o.refresh_s)
                self._started.append(("ui", self.ui.stop))
                progress(f"UI and API          {self.ui.url}" + ("  (token required)" if o.token else ""))
        except BaseException:
            self.stop()
            raise
        return self

    def _requests(self, start: float, end: float) -> pd.DataFrame:
        got = self.backend.requests(start, end)
        return got if got is not None else self.store.requests(start, end)

    def stop(self) -> None:
        """Stop every part that started, newest first; safe to call twice."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        for name, stop in reversed(self._started):
            try:
                stop()
            except Exception as exc:  # stopping one part must not keep the others running
                log.warning("stopping %s failed: %s", name, exc)

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BundledBackend:
    """The bundled mesh as a backend: Envoy stats scraped and access logs tailed into the store.

    Pass a running `BundledMesh` as `mesh` to attach to it (tests share one); otherwise
    `config` (a `mesh.bundled.BundledConfig`) describes the mesh to start and stop.
    """

    name = "bundled mesh"

    def __init__(self, config: Any = None, mesh: Any = None, scrape_interval: float = 5.0):
        self.config = config
        self.mesh = mesh
        self._owns_mesh = mesh is None
        self.scrape_interval = scrape_interval
        self.store = None
        self.scraper = None
        self.tailer = None

    def start(self, store: Any, otlp_endpoint: str, progress: Progress) -> None:
        from collector.sources.access_log import AccessLogTailer
        from collector.sources.prom_scrape import Scraper

        self.store = store
        if self.mesh is None:
            from mesh.bundled import BundledConfig, BundledMesh

            cfg = self.config or BundledConfig()
            if cfg.otlp_endpoint is None:
                cfg.otlp_endpoint = otlp_endpoint
            progress("starting the bundled mesh (Envoy sidecars, demo apps, traffic)...")
            self.mesh = BundledMesh(cfg).start()
            progress(f"ingress gateway     {self.mesh.gateway_url}/productpage  (ready in {self.mesh.ready_seconds:.1f}s)")
            if self.mesh.restored_scenario:
                progress(f"scenario            {self.mesh.restored_scenario} re-applied: it was active when the mesh last "
                         "stopped (`meshscope scenario clear` returns to the baseline)")
        self.scraper = Scraper(self.mesh.scrape_targets, store, interval=self.scrape_interval)
        self.scraper.start()
        state = Path(self.mesh.data_dir) / "access-log-offsets.json"
        self.tailer = AccessLogTailer(self.mesh.access_logs, store, state_path=state)
        self.tailer.start()
        progress(f"collectors          scraping {len(self.mesh.scrape_targets())} sidecars every "
                 f"{self.scrape_interval:g}s, tailing {len(self.mesh.access_logs())} access logs")

    def stop(self) -> None:
        for part in (self.tailer, self.scraper):
            if part is not None:
                part.stop()
        if self.mesh is not None and self._owns_mesh:
            self.mesh.stop()

    def snapshot(self) -> Any:
        return self.mesh.snapshot()

    def data_version(self) -> tuple:
        """Changes whenever the graph's inputs do (new metric samples, another config): caches key on it."""
        return self.store.generation("metrics"), tuple(map(id, self.mesh.snapshot().objects))

    def rates(self, window_s: float, end: float | None = None) -> pd.DataFrame:
        from collector.query import istio_rates

        return istio_rates(self.store, window_s, end)

    def serving_pairs(self, window_s: float, end: float) -> set[tuple[str, str]]:
        """The canary source's cheap check beside `rates` (diagnose.canary.live.request_pairs; #18)."""
        from diagnose.canary.live import request_pairs

        return request_pairs(self.store, window_s, end)

    def rates_range(self, window_s: float, start: float, end: float, step: float) -> list[tuple[float, pd.DataFrame]]:
        """`rates(window_s, t)` at end, end - step, ... down to start, from one read of the store (a page's series)."""
        from collector.query import istio_rates_range

        return istio_rates_range(self.store, window_s, start, end, step)

    def requests(self, start: float, end: float) -> pd.DataFrame | None:
        return None  # the stack reads the store, where the tailer puts them
