"""The Prometheus HTTP API (Prometheus, Thanos, Mimir) as a source of Istio metrics.

This is how meshscope reads a big real mesh: Prometheus has already scraped and aggregated
the sidecars, so one PromQL `sum(rate(m[w])) by (Istio labels)` per metric gives the *Istio
rate frame* directly, the same frame `collector.query.istio_rates` computes from local scrapes.

Errors are one exception type with a `kind` (unreachable, timeout, auth, bad_query,
server, bad_response) and a message a user can act on; they never leak httpx tracebacks.
`PrometheusSource` copies raw Istio counters into the local store on an interval, so history
outlives the Prometheus retention and local queries work the same for both worlds.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable

import httpx
import numpy as np
import pandas as pd

from collector import schema as s
from collector import selfmetrics
from collector.parse.exposition import format_labels
from collector.query import RATE_COLUMNS
from collector.store import TelemetryStore

log = logging.getLogger(__name__)

RATE_METRICS = (s.ISTIO_REQUESTS_TOTAL, f"{s.ISTIO_REQUEST_DURATION_MS}_bucket", s.ISTIO_TCP_SENT_BYTES, s.ISTIO_TCP_RECEIVED_BYTES)


class PrometheusAPIError(Exception):
    """A failed API call; `kind` is one of unreachable, timeout, auth, bad_query, server, bad_response."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class PrometheusClient:
    """Small, strict client for `/api/v1/query` and `/api/v1/query_range`."""

    def __init__(self, url: str, token: str | None = None, username: str | None = None, password: str | None = None,
                 timeout: float = 10.0, verify: bool | str = True, headers: dict[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        hdrs = dict(headers or {})
        if token:
            hdrs["authorization"] = f"Bearer {token}"
        auth = httpx.BasicAuth(username, password or "") if username else None
        self.timeout = timeout
        self._client = httpx.Client(base_url=self.url, headers=hdrs, auth=auth, timeout=timeout, verify=verify)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- raw API
    def _call(self, path: str, params: dict) -> dict:
        try:
            r = self._client.post(path, data=params)  # POST: long PromQL does not hit URL limits
        except httpx.TimeoutException:
            self._fail("timeout", f"Prometheus at {self.url} did not answer within {self.timeout:g}s")
        except httpx.HTTPError as exc:
            self._fail("unreachable", f"cannot reach Prometheus at {self.url}: {exc}")
        if r.status_code in (401, 403):
            self._fail("auth", f"Prometheus at {self.url} refused the credentials (HTTP {r.status_code})")
        try:
            doc = r.json()
        except ValueError:
            self._fail("bad_response", f"{self.url}{path} did not return Prometheus API JSON (HTTP {r.status_code}): {r.text[:200]!r}")
        if not isinstance(doc, dict) or doc.get("status") != "success":
            err = doc.get("error", "unknown error") if isinstance(doc, dict) else "unexpected body"
            etype = doc.get("errorType", "") if isinstance(doc, dict) else ""
            kind = "bad_query" if etype == "bad_data" or r.status_code == 400 else ("timeout" if etype == "timeout" else "server")
            self._fail(kind, f"Prometheus {etype or 'error'} (HTTP {r.status_code}): {err}")
        for w in doc.get("warnings", []) or []:
            log.warning("Prometheus warning: %s", w)
        data = doc.get("data")
        if not isinstance(data, dict) or "resultType" not in data:
            self._fail("bad_response", f"{self.url}{path}: response has no data.resultType")
        return data

    def _fail(self, kind: str, message: str):
        selfmetrics.PROM_API_ERRORS.labels(kind).inc()
        raise PrometheusAPIError(kind, message)

    def query(self, promql: str, at: float | pd.Timestamp | None = None) -> dict:
        """Instant query; returns the API's `data` ({resultType, result})."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{_unix(at):.3f}"
        return self._call("/api/v1/query", params)

    def query_range(self, promql: str, start, end, step: float) -> dict:
        """Range query (evaluated at start, start + step, ... end); returns the API's `data` ({resultType, result})."""
        return self._call("/api/v1/query_range", {"query": promql, "start": f"{_unix(start):.3f}",
                                                  "end": f"{_unix(end):.3f}", "step": f"{step:.3f}"})

    # -- frames
    def query_vector(self, promql: str, at=None) -> pd.DataFrame:
        """Instant vector -> one row per series: its labels as columns, plus `value`."""
        data = self.query(promql, at)
        if data["resultType"] not in ("vector", "scalar"):
            raise PrometheusAPIError("bad_query", f"expected an instant vector, got {data['resultType']}")
        if data["resultType"] == "scalar":
            return pd.DataFrame({"value": [_float(data["result"][1])]})
        rows = [{**r.get("metric", {}), "value": _float(r["value"][1])} for r in data["result"]]
        return pd.DataFrame(rows) if rows else pd.DataFrame({"value": pd.Series(dtype=float)})

    def query_range_frame(self, promql: str, start, end, step: float) -> pd.DataFrame:
        """Range query -> long frame: labels, `time` (UTC), `value`."""
        data = self.query_range(promql, start, end, step)
        frames = []
        for r in data["result"]:
            vals = np.array(r["values"], dtype=object)
            if not len(vals):
                continue
            f = pd.DataFrame({s.TIME: pd.to_datetime(vals[:, 0].astype(float), unit="s", utc=True),
                              "value": [_float(v) for v in vals[:, 1]]})
            for k, v in r.get("metric", {}).items():
                f[k] = v
            frames.append(f)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({s.TIME: [], "value": []})

    def istio_rates(self, window_s: float, end=None, metrics: Iterable[str] = RATE_METRICS,
                    selector: str = "") -> pd.DataFrame:
        """The Istio rate frame from PromQL, one `sum(rate(m[w])) by (labels)` per metric."""
        frames = []
        w = f"{max(1, int(round(window_s)))}s"
        for metric in metrics:
            by = ",".join(s.ISTIO_LABELS) + (",le" if metric.endswith("_bucket") else "")
            promql = f"sum(rate({metric}{{{selector}}}[{w}])) by ({by})"
            df = self.query_vector(promql, at=end)
            if df.empty or "value" not in df:
                continue
            df = df[df["value"].notna()]
            out = pd.DataFrame({c: (df[c].fillna("unknown").astype(str) if c in df else "unknown") for c in s.ISTIO_LABELS},
                               index=df.index)
            out[s.METRIC] = metric
            out[s.LE] = df["le"].map(_float) if "le" in df else math.nan
            out[s.RATE] = df["value"].astype(float)
            frames.append(out)
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype=float if c in (s.LE, s.RATE) else "str") for c in RATE_COLUMNS})
        return pd.concat(frames, ignore_index=True)[list(RATE_COLUMNS)]


class PrometheusSource:
    """Copies raw Istio counters from Prometheus into the store every `interval` seconds."""

    name = "prom_api"

    def __init__(self, client: PrometheusClient, store: TelemetryStore, interval: float = 15.0,
                 match: str = '{__name__=~"istio_requests_total|istio_request_duration_milliseconds_bucket|istio_tcp_sent_bytes_total|istio_tcp_received_bytes_total"}') -> None:
        self.client, self.store, self.interval, self.match = client, store, interval, match
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: PrometheusAPIError | None = None

    @selfmetrics.counts_cpu("prom_api")
    def poll(self) -> int:
        try:
            data = self.client.query(self.match)
        except PrometheusAPIError as exc:
            self.last_error = exc
            log.warning("Prometheus poll failed: %s", exc)
            return 0
        self.last_error = None
        if data["resultType"] != "vector" or not data["result"]:
            return 0
        rows = []
        for r in data["result"]:  # one row per series returned (the API hands out JSON objects)
            labels = dict(r.get("metric", {}))
            name = labels.pop("__name__", "")
            row = {c: labels.get(c, "unknown") for c in s.ISTIO_LABELS}
            row.update({s.METRIC: name, s.LE: _float(labels["le"]) if "le" in labels else math.nan,
                        s.VALUE: _float(r["value"][1]), s.TIME: float(r["value"][0]),
                        s.TARGET: labels.get("instance", "prometheus"),
                        s.LABELS: format_labels({k: v for k, v in labels.items() if k != "le"})})
            rows.append(row)
        df = pd.DataFrame(rows)
        df[s.TIME] = pd.to_datetime(df[s.TIME], unit="s", utc=True)
        n = self.store.add_samples(df)
        selfmetrics.count_ingested(self.name, "metrics", n)
        return n

    def start(self) -> None:
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="prom-api", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            self.poll()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - t0)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.client.timeout + 5)
            self._thread = None


def _float(v) -> float:
    if isinstance(v, (int, float)):
        return float(v)
    t = str(v).strip()
    low = t.lower()
    if low in ("+inf", "inf"):
        return math.inf
    if low == "-inf":
        return -math.inf
    try:
        return float(t)
    except ValueError:
        return math.nan


def _unix(t) -> float:
    if isinstance(t, (int, float)):
        return float(t)
    ts = pd.Timestamp(t)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.value / 1e9
