"""Real-cluster mode: the Kubernetes API for config, Prometheus for metrics (`meshscope serve`).

`ClusterBackend` is the `meshscope.app.Backend` for a real Istio/ASM cluster. Config comes
from a watching `mesh.kube.KubeSource`; the `Snapshot` is rebuilt off the request path,
debounced, so a burst of pod churn costs one rebuild. Metrics come from the Prometheus HTTP
API (Prometheus, Thanos, Mimir) with Kiali's query semantics but ONE query per metric
across all selected namespaces (namespace regex matchers joined with `or`), not Kiali's
query set per namespace.

Nothing here crashes the stack when a part is down: Prometheus or Kubernetes errors are
kept in `status()` (and announced once per change through `notify`), and `rates()` raises
`PrometheusUnavailable`, which the API serves as a visible error.
"""
from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from collector import schema as s
from collector.query import RATE_COLUMNS
from collector.sources.prom_api import PrometheusAPIError, PrometheusClient, decode_vector, decode_matrix, survived
from mesh.config import EXCLUDED_NAMESPACES, MeshConfig, Snapshot

log = logging.getLogger("meshscope.cluster")

#: The metrics the rate frame holds (what `collector.query.istio_rates` computes locally).
RATE_METRICS = (s.ISTIO_REQUESTS_TOTAL, f"{s.ISTIO_REQUEST_DURATION_MS}_bucket", s.ISTIO_TCP_SENT_BYTES,
                s.ISTIO_TCP_RECEIVED_BYTES)
#: Duration buckets are grouped like Kiali's response-time queries: by who called whom, not by response
#: code, flags, principals or security policy. Latency is read per edge and per caller only, and each
#: dropped label would multiply the bucket series (already ~8-20 per edge) for nothing.
BUCKET_LABELS = tuple(c for c in s.ISTIO_LABELS if c not in (
    s.RESPONSE_CODE, s.GRPC_RESPONSE_STATUS, s.RESPONSE_FLAGS, s.SOURCE_PRINCIPAL, s.DESTINATION_PRINCIPAL,
    s.CONNECTION_SECURITY_POLICY))
METRICS_VERSION_TTL_S = 1.0  # Prometheus scrapes every 5-15 s: a fingerprint a second old misses nothing for long
_NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

try:  # the API maps Unavailable to a JSON error (never an HTML traceback page)
    from dashboard.query import Unavailable as _Unavailable
except ImportError:  # pragma: no cover - dashboard is part of the same distribution
    _Unavailable = RuntimeError  # type: ignore[assignment,misc]


class PrometheusUnavailable(PrometheusAPIError, _Unavailable):
    """Prometheus could not answer; the message says why (unreachable, auth, timeout, query error)."""


@dataclass
class ClusterOptions:
    """Where the cluster and its metrics are, and how to read them."""

    prometheus_url: str
    kubeconfig: str | None = None
    context: str | None = None
    # A separate API for Istio's and ASM's kinds (the ASM instance's kubeconfig); None = the data-plane cluster's
    config_kubeconfig: str | None = None
    config_context: str | None = None
    namespaces: list[str] | None = None  # None = every namespace
    prometheus_token: str | None = None
    prometheus_user: str | None = None
    prometheus_password: str | None = None
    prometheus_timeout: float = 10.0
    mesh_config: MeshConfig = field(default_factory=MeshConfig)
    debounce_s: float = 1.0  # quiet time after a watch event before the snapshot is rebuilt
    max_delay_s: float = 5.0  # rebuild at least this often while events keep coming


def check_namespaces(names: Sequence[str]) -> list[str]:
    """Namespace names as given, validated (they go into PromQL regexes); ValueError names the bad one."""
    out = []
    for n in names:
        n = n.strip()
        if not n:
            continue
        if not _NAMESPACE_RE.match(n):
            raise ValueError(f"{n!r} is not a Kubernetes namespace name (lower-case letters, digits and '-')")
        out.append(n)
    return out


# ---- PromQL ---------------------------------------------------------------------------
def rate_query(metric: str, window_s: float, namespaces: Sequence[str] | None = None) -> str:
    """One PromQL query for `metric` over every selected namespace, with Kiali's selectors.

    Kiali asks, per namespace: source-reported traffic out of it, destination-reported traffic
    into it, and source-reported requests to its hosts that no destination proxy saw
    (`destination_workload="unknown"`). Here each selector matches all namespaces at once
    with a regex and the three are joined with `or`: the group-by keeps every label the
    selectors test, so a series matched twice is the same series with the same value and
    `or` keeps it once. Zero rates are dropped (`> 0`, Kiali's default without idle edges)
    except for histogram buckets, whose empty low buckets matter for quantiles; buckets are
    grouped by `BUCKET_LABELS` (the labels they lack read as "unknown" in the frame).
    """
    w = f"{max(1, int(round(window_s)))}s"
    bucket = metric.endswith("_bucket")
    by = ",".join(BUCKET_LABELS) + ",le" if bucket else ",".join(s.ISTIO_LABELS)
    nonzero = "" if bucket else " > 0"

    def one(selector: str) -> str:
        return f"sum by ({by}) (rate({metric}{{{selector}}}[{w}])){nonzero}"

    return " or ".join(one(sel) for sel in _selectors(namespaces))


def _selectors(namespaces: Sequence[str] | None) -> list[str]:
    """Kiali's three label selectors for the selected namespaces (one empty selector for all of them)."""
    if not namespaces:
        return [""]
    ns = "|".join(namespaces)
    return [f'reporter="source",{s.SOURCE_WORKLOAD_NAMESPACE}=~"{ns}"',
            f'reporter="destination",{s.DESTINATION_WORKLOAD_NAMESPACE}=~"{ns}"',
            f'reporter="source",{s.DESTINATION_WORKLOAD}="unknown",{s.DESTINATION_SERVICE}=~"^.+\\\\.({ns})\\\\..+$"']


#: What `fingerprint_query` sums: a request, a latency or a byte moved changes one of these counters.
FINGERPRINT_METRICS = (s.ISTIO_REQUESTS_TOTAL, f"{s.ISTIO_REQUEST_DURATION_MS}_sum", s.ISTIO_TCP_SENT_BYTES,
                       s.ISTIO_TCP_RECEIVED_BYTES)


def fingerprint_query(namespaces: Sequence[str] | None = None) -> str:
    """One instant query whose answer changes when the series `rate_query` reads do: per metric, the sum of the
    latest samples and the number of series of the selected namespaces (a scrape that saw no traffic changes
    neither; new traffic, a new or vanished series does). Its cost is one pass over the counters, not the buckets."""
    names = "|".join(FINGERPRINT_METRICS)
    series = " or ".join(f'{{__name__=~"{names}"{"," + sel if sel else ""}}}' for sel in _selectors(namespaces))
    series = f"({series})" if namespaces else series
    return (f'label_replace(sum by (__name__) ({series}), "stat", "sum", "", "") or '
            f'label_replace(count by (__name__) ({series}), "stat", "count", "", "")')


def vector_to_rates(result: Any, metric: str, origin: str = "cluster") -> pd.DataFrame:
    """A PromQL instant-vector result (`data.result`) as rows of the Istio rate frame.

    A malformed series (a native histogram, a sample of the wrong shape, a value that is no number)
    is skipped and counted under `origin`; every other series is read."""
    dec = decode_vector(result)
    dec.count(origin)
    if not len(dec.value):
        return empty_rates()
    out = _labelled(dec.labels, metric, dec.value)
    return out[out[s.RATE].notna()][list(RATE_COLUMNS)]


def _labelled(labels: pd.DataFrame, metric: str, values: Any) -> pd.DataFrame:
    """Rows of the rate frame from Prometheus series labels (one row each; an absent label is "unknown")."""
    out = pd.DataFrame({c: (labels[c].fillna("unknown").astype(str) if c in labels else "unknown")
                        for c in s.ISTIO_LABELS}, index=labels.index)
    out[s.METRIC] = metric
    out[s.LE] = pd.to_numeric(labels["le"], errors="coerce") if "le" in labels else math.nan
    out[s.RATE] = values
    return out


def matrix_to_rates(result: Any, metric: str, times: np.ndarray, origin: str = "cluster") -> list[pd.DataFrame]:
    """A PromQL range result (`data.result`, a matrix) as one rate frame per evaluation time in `times`.

    Each sample goes to the nearest of `times` (Prometheus evaluates at start + k * step);
    samples that match none are dropped. Decoding is columnar (`prom_api.decode_matrix`): labels
    once per series, values as one array, then one split by point; malformed series and points
    are skipped and counted under `origin`.
    """
    if not len(times):
        return []
    dec = decode_matrix(result)
    dec.count(origin)
    if not len(dec.value):
        return [empty_rates() for _ in times]
    at, values = dec.time, dec.value
    step = float(times[1] - times[0]) if len(times) > 1 else 1.0
    point = np.rint((at - times[0]) / step).astype(np.int64)
    ok = (point >= 0) & (point < len(times)) & (np.abs(at - times[np.clip(point, 0, len(times) - 1)]) < step / 2)
    out = _labelled(dec.labels, metric, values)
    keep = ok & ~np.isnan(values)
    out, point = out[keep][list(RATE_COLUMNS)], point[keep]
    by_point = dict(iter(out.groupby(point, sort=False))) if len(out) else {}
    return [by_point[i].reset_index(drop=True) if i in by_point else empty_rates() for i in range(len(times))]


def range_times(start: float, end: float, step: float) -> np.ndarray:
    """Prometheus' evaluation times of a range query: start, start + step, ... up to end."""
    n = int(math.floor((end - start) / step + 1e-6)) + 1 if end >= start and step > 0 else 0
    return start + step * np.arange(n)


def _number_text(v: float) -> str:
    """A sample value as Prometheus writes it (shortest form, no ".0" on whole numbers): 10, 0.5778, NaN."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    text = repr(v)
    return text[:-2] if text.endswith(".0") else text


def _resource_version(raw: Any) -> str:
    """An object's metadata.resourceVersion as text; "" when the object or its metadata is no object."""
    meta = raw.get("metadata") if isinstance(raw, dict) else None
    return str(meta.get("resourceVersion", "")) if isinstance(meta, dict) else ""


def empty_rates() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float if c in (s.LE, s.RATE) else "str") for c in RATE_COLUMNS})


# ---- the backend ----------------------------------------------------------------------
def _count_skipped(origin: str) -> Callable[[str, str, str, str], None]:
    """KubeSource's on_malformed: a skipped Kubernetes object counted in meshscope_collector_malformed_total
    {source="kube", origin="<origin>/<kind>", reason} with its sample, like the collectors' refusals (#18)."""
    from collector import selfmetrics

    def count(kind: str, reason: str, message: str, sample: str) -> None:
        selfmetrics.reject("kube", f"{origin}/{kind}", reason, sample, message=f"{kind}: {message}")
    return count


class ClusterBackend:
    """A real cluster as a `meshscope.app.Backend`: KubeSource + Prometheus.

    `api_client` and `prometheus` may be injected (tests, benches); otherwise they are
    built from the options at `start()`. `notify(message)` hears every status change.
    """

    name = "cluster"

    def __init__(self, options: ClusterOptions, api_client: Any = None, prometheus: PrometheusClient | None = None,
                 notify: Callable[[str], None] | None = None) -> None:
        self.options = options
        self.namespaces = check_namespaces(options.namespaces) if options.namespaces else None
        self._api = api_client
        self.prometheus = prometheus
        self.notify = notify or (lambda msg: log.info("%s", msg))
        self.source: Any = None
        self.config_source: Any = None  # KubeSource over the config API when it is separate
        self._config_api: Any = None
        self.journal: Any = None  # mesh.journal.Journal the composition root opens in the data dir
        self._snapshot = Snapshot([], options.mesh_config)
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._first_event = 0.0
        self._last_event = 0.0
        self._thread: threading.Thread | None = None
        self._announce = True  # False while start() reports through `progress` instead
        self._config_version = 0  # moves when a rebuild's objects (kind, namespace, name, resourceVersion) differ
        self._config_keys: frozenset = frozenset()
        self._metrics_version: tuple[float, tuple] | None = None  # (monotonic when asked, fingerprint)
        self._status: dict[str, dict[str, Any]] = {
            "kubernetes": {"state": "starting", "error": "", "rebuilds": 0, "objects": 0, "last_rebuild_s": 0.0,
                           "failed_rounds": 0},
            "prometheus": {"state": "unknown", "error": "", "url": options.prometheus_url, "queries": 0,
                           "last_ok": None, "last_query_s": 0.0},
        }

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self, store: Any = None, otlp_endpoint: str = "", progress: Callable[[str], None] = lambda m: None) -> None:
        """List the cluster (raises `KubeError` when it cannot be read), start watches, probe Prometheus."""
        from mesh.kube import KubeSource, api_client

        o = self.options
        self._announce = False
        if self._api is None:
            self._api = api_client(o.kubeconfig, o.context)
        if self.prometheus is None:
            self.prometheus = PrometheusClient(o.prometheus_url, token=o.prometheus_token, username=o.prometheus_user,
                                               password=o.prometheus_password, timeout=o.prometheus_timeout)
        where = o.context or (self._api.configuration.host if hasattr(self._api, "configuration") else "cluster")
        progress(f"reading the cluster {where} (namespaces: {', '.join(self.namespaces) if self.namespaces else 'all'}) ...")
        t0 = time.perf_counter()
        from meshscope import config_source as cs
        separate = bool(o.config_kubeconfig or o.config_context)
        self.source = KubeSource(self._api, namespaces=self.namespaces, root_namespace=o.mesh_config.root_namespace,
                                 kinds=cs.workload_kinds() if separate else cs.KINDS,
                                 origin=f"k8s:{o.context or 'cluster'}", on_change=self._changed, journal=self.journal,
                                 on_malformed=_count_skipped(f"k8s:{o.context or 'cluster'}"))
        self.source.start()
        if separate:
            if self._config_api is None:
                self._config_api = api_client(o.config_kubeconfig or o.kubeconfig, o.config_context)
            progress(f"reading Istio and ASM config from {o.config_context or o.config_kubeconfig} ...")
            self.config_source = KubeSource(self._config_api, namespaces=self.namespaces,
                                            root_namespace=o.mesh_config.root_namespace, kinds=cs.config_kinds(),
                                            origin=f"k8s:{o.config_context or 'config'}", on_change=self._changed,
                                            journal=self.journal,
                                            on_malformed=_count_skipped(f"k8s:{o.config_context or 'config'}"))
            self.config_source.start()
        self._dirty.clear()  # the initial lists announce themselves as changes: this rebuild covers them
        self._rebuild()
        kube_status = self._kube_status()
        served = [k for k, st in kube_status.items() if st["version"]]
        progress(f"kubernetes          {self._status['kubernetes']['objects']} objects of {len(served)} kinds "
                 f"in {time.perf_counter() - t0:.1f}s, watching for changes")
        optional = {k.key for k in cs.KINDS if cs.is_optional(k)}
        missing = sorted(k for k, st in kube_status.items() if not st["version"] and k not in optional)
        if missing:
            progress(f"                    not served by this cluster: {', '.join(missing)}")
        forbidden = sorted(k for k, st in kube_status.items() if st.get("forbidden"))
        if forbidden:  # optional kinds the role may not read: their checks cannot run (deploy/kubernetes/rbac.yaml)
            progress(f"                    not readable with these credentials: {', '.join(forbidden)}")
        hint = self._status["kubernetes"].get("warning")
        if hint:
            progress(f"WARNING             {hint} (serve: --config-kubeconfig)")
        self._stop.clear()
        self._thread = threading.Thread(target=self._rebuild_loop, name="cluster-snapshot", daemon=True)
        self._thread.start()
        try:
            self.prometheus.query("vector(1)")
            self._prom_ok(0.0)
            progress(f"prometheus          {o.prometheus_url} answers")
        except PrometheusAPIError as exc:
            self._prom_failed(exc)
            progress(f"prometheus          NOT AVAILABLE: {exc} (the graph stays empty until it answers)")
        self._announce = True

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()
        if self._thread:
            self._thread.join(timeout=5)
            self._thread = None
        if self.source is not None:
            self.source.stop()
        if self.config_source is not None:
            self.config_source.stop()
        if self.prometheus is not None:
            self.prometheus.close()

    # ---- config -------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The cluster's config as last rebuilt (at most `debounce_s`..`max_delay_s` behind a change)."""
        with self._lock:
            return self._snapshot

    def objects(self) -> list:
        """What the snapshot is built from: the mirrored objects minus Kubernetes' own namespaces."""
        mirrored = (self.source.objects() if self.source else []) + \
            (self.config_source.objects() if self.config_source else [])
        return [o for o in mirrored if o.namespace not in EXCLUDED_NAMESPACES]

    def notices(self) -> list[str]:
        """One-line warnings for the overview (Istio config not visible from this cluster)."""
        with self._lock:
            w = self._status["kubernetes"].get("warning")
        return [w] if w else []

    def _kube_status(self) -> dict[str, dict[str, Any]]:
        """Per kind status of whichever source reads it (the config API's for Istio/ASM kinds when separate)."""
        out = dict(self.source.status()) if self.source else {}
        if self.config_source is not None:
            out.update(self.config_source.status())
        return out

    def _changed(self, kind: str, event: str, obj: Any) -> None:
        now = time.monotonic()
        if not self._dirty.is_set():
            self._first_event = now
        self._last_event = now
        self._dirty.set()

    def _rebuild(self) -> None:
        t0 = time.perf_counter()
        objects = self.objects()
        snap = Snapshot(objects, self.options.mesh_config)
        hint = None
        if self.config_source is None and self.source is not None:  # one API for all: does it serve Istio's kinds?
            from meshscope.config_source import istio_config_hint
            hint = istio_config_hint(self.source.status(), objects)
        keys = frozenset((o.kind, o.namespace, o.name, _resource_version(o.raw)) for o in objects)
        with self._lock:
            self._snapshot = snap
            if keys != self._config_keys:  # a relist or an event that changed nothing keeps the version
                self._config_keys = keys
                self._config_version += 1
            self._status["kubernetes"]["warning"] = hint or ""
            st = self._status["kubernetes"]
            st.update(objects=len(objects), rebuilds=st["rebuilds"] + 1, last_rebuild_s=time.perf_counter() - t0)
        self._update_kube_state()

    def _rebuild_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._rebuild_round()
            except Exception as exc:  # a bad object or status must not stop config updates for good (#18)
                with self._lock:
                    self._status["kubernetes"]["failed_rounds"] += 1
                survived("cluster-snapshot", exc)
                self._stop.wait(0.2)

    def _rebuild_round(self) -> None:
        """One wait-and-maybe-rebuild step of `_rebuild_loop`."""
        o = self.options
        self._dirty.wait(timeout=2.0)
        if self._stop.is_set():
            return
        if not self._dirty.is_set():
            self._update_kube_state()
            return
        now = time.monotonic()
        quiet = now - self._last_event >= o.debounce_s
        overdue = now - self._first_event >= o.max_delay_s
        if not (quiet or overdue):
            self._stop.wait(min(o.debounce_s, 0.2))
            return
        self._dirty.clear()
        self._rebuild()

    def _update_kube_state(self) -> None:
        errors = {k: st["last_error"] for k, st in self._kube_status().items() if st["version"] and st["last_error"]}
        state = "degraded" if errors else "ok"
        message = "; ".join(f"{k}: {e}" for k, e in sorted(errors.items()))
        with self._lock:
            st = self._status["kubernetes"]
            changed = (st["state"], st["error"]) != (state, message)
            st.update(state=state, error=message)
        if changed and self._announce:
            self.notify(f"kubernetes {state}" + (f": {message}" if message else ""))

    # ---- metrics ------------------------------------------------------------------------
    def rates(self, window_s: float, end: float | None = None) -> pd.DataFrame:
        """The Istio rate frame from Prometheus: one query per metric over the selected namespaces."""
        if self.prometheus is None:
            raise PrometheusUnavailable("unreachable", "Prometheus is not configured (the backend is not started)")
        t0 = time.perf_counter()
        frames = []
        try:
            for metric in RATE_METRICS:
                data = self.prometheus.query(rate_query(metric, window_s, self.namespaces), at=end)
                if data.get("resultType") != "vector":
                    raise PrometheusAPIError("bad_response", f"expected an instant vector, got {data.get('resultType')}")
                frames.append(vector_to_rates(data.get("result"), metric, self.options.prometheus_url))
        except PrometheusAPIError as exc:
            self._prom_failed(exc)
            raise PrometheusUnavailable(exc.kind, f"Prometheus unavailable: {exc}") from None
        self._prom_ok(time.perf_counter() - t0, len(RATE_METRICS))
        frames = [f for f in frames if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else empty_rates()

    def rates_range(self, window_s: float, start: float, end: float, step: float) -> list[tuple[float, pd.DataFrame]]:
        """The rate frame over `window_s` at start, start + step, ... end: one range query per metric.

        What `rates(window_s, t)` gives at each of those times (the same PromQL, evaluated by
        Prometheus at the same instants), for 4 queries whatever the number of points, where
        asking point by point costs 4 per point.
        """
        if self.prometheus is None:
            raise PrometheusUnavailable("unreachable", "Prometheus is not configured (the backend is not started)")
        if step <= 0:
            raise ValueError(f"step must be positive, got {step}")
        start, end, step = round(start, 3), round(end, 3), round(step, 3)  # what the API is sent (ms)
        times = range_times(start, end, step)
        t0 = time.perf_counter()
        per_metric = []
        try:
            for metric in RATE_METRICS:
                data = self.prometheus.query_range(rate_query(metric, window_s, self.namespaces), start, end, step)
                if data.get("resultType") != "matrix":
                    raise PrometheusAPIError("bad_response", f"expected a range matrix, got {data.get('resultType')}")
                per_metric.append(matrix_to_rates(data.get("result"), metric, times, self.options.prometheus_url))
        except PrometheusAPIError as exc:
            self._prom_failed(exc)
            raise PrometheusUnavailable(exc.kind, f"Prometheus unavailable: {exc}") from None
        self._prom_ok(time.perf_counter() - t0, len(RATE_METRICS))
        out = []
        for i, t in enumerate(times.tolist()):
            parts = [m[i] for m in per_metric if len(m[i])]
            out.append((t, pd.concat(parts, ignore_index=True) if parts else empty_rates()))
        return out

    def requests(self, start: float, end: float) -> pd.DataFrame | None:
        return None  # a cluster's access logs are not read here; the stack uses its (OTLP-fed) store

    # ---- idle is idle ---------------------------------------------------------------------
    def data_version(self) -> tuple:
        """Moves when what the diagnoser and the graphs read here moves: the config (a rebuild whose objects'
        resourceVersions differ) or Prometheus' Istio series (`metrics_version`). Equal versions, equal inputs,
        so the live diagnoser skips the cycle (#18). Raises `PrometheusUnavailable` when it cannot tell."""
        with self._lock:
            config = self._config_version
        return config, self.metrics_version()

    def metrics_version(self) -> tuple:
        """A fingerprint of the series `rates()` reads (`fingerprint_query`): one query, asked at most once per
        `METRICS_VERSION_TTL_S` (the API asks it per graph request, the diagnoser per cycle)."""
        now = time.monotonic()
        cached = self._metrics_version
        if cached is not None and now - cached[0] < METRICS_VERSION_TTL_S:
            return cached[1]
        if self.prometheus is None:
            raise PrometheusUnavailable("unreachable", "Prometheus is not configured (the backend is not started)")
        try:
            data = self.prometheus.query(fingerprint_query(self.namespaces))
        except PrometheusAPIError as exc:
            raise PrometheusUnavailable(exc.kind, f"Prometheus unavailable: {exc}") from None
        dec = decode_vector(data.get("result"))  # a malformed series is left out (and counted), not fatal
        dec.count(self.options.prometheus_url)
        col = dec.labels.get
        names = col("__name__", pd.Series("", index=dec.labels.index)).fillna("").astype(str)
        stats = col("stat", pd.Series("", index=dec.labels.index)).fillna("").astype(str)
        version = tuple(sorted(zip(names.tolist(), stats.tolist(), map(_number_text, dec.value.tolist()))))
        self._metrics_version = (now, version)
        return version

    # ---- status -------------------------------------------------------------------------
    def status(self) -> dict[str, dict[str, Any]]:
        """`{"kubernetes": {state, error, objects, rebuilds, ...}, "prometheus": {state, error, url, ...}}`."""
        with self._lock:
            return {k: dict(v) for k, v in self._status.items()}

    def _prom_ok(self, took: float, queries: int = 1) -> None:
        with self._lock:
            st = self._status["prometheus"]
            was = st["state"]
            st.update(state="ok", error="", last_ok=time.time(), last_query_s=took, queries=st["queries"] + queries)
        if was != "ok" and self._announce:
            self.notify(f"prometheus ok ({self.options.prometheus_url})")

    def _prom_failed(self, exc: PrometheusAPIError) -> None:
        with self._lock:
            st = self._status["prometheus"]
            changed = (st["state"], st["error"]) != ("error", str(exc))
            st.update(state="error", error=str(exc), kind=exc.kind)
        if changed and self._announce:
            self.notify(f"prometheus error: {exc}")
