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

import json
import logging
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from collector import schema as s
from collector import selfmetrics
from collector.parse.exposition import format_labels
from collector.query import RATE_COLUMNS
from collector.store import TelemetryStore

log = logging.getLogger(__name__)

#: The largest answer read (about 400k series of Istio labels): beyond it the call fails as bad_response.
MAX_ANSWER_BYTES = 256 * 1024 * 1024
RATE_METRICS = (s.ISTIO_REQUESTS_TOTAL, f"{s.ISTIO_REQUEST_DURATION_MS}_bucket", s.ISTIO_TCP_SENT_BYTES, s.ISTIO_TCP_RECEIVED_BYTES)


class PrometheusAPIError(Exception):
    """A failed API call; `kind` is one of unreachable, timeout, auth, bad_query, server, bad_response."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after  # seconds the server asked to wait (429/503 Retry-After), else None


class PrometheusClient:
    """Small, strict client for `/api/v1/query` and `/api/v1/query_range`."""

    def __init__(self, url: str, token: str | None = None, username: str | None = None, password: str | None = None,
                 timeout: float = 10.0, verify: bool | str = True, headers: dict[str, str] | None = None,
                 max_bytes: int = MAX_ANSWER_BYTES) -> None:
        self.url = url.rstrip("/")
        self.max_bytes = max_bytes
        self._noted: set[str] = set()
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
            with self._client.stream("POST", path, data=params) as r:  # POST: long PromQL does not hit URL limits
                body = self._read(r, path)
        except httpx.TimeoutException:
            self._fail("timeout", f"Prometheus at {self.url} did not answer within {self.timeout:g}s")
        except httpx.HTTPError as exc:
            self._fail("unreachable", f"cannot reach Prometheus at {self.url}: {exc}")
        if r.status_code in (401, 403):
            self._fail("auth", f"Prometheus at {self.url} refused the credentials (HTTP {r.status_code})")
        retry = _retry_after(r.headers.get("retry-after")) if r.status_code in (429, 503) else None
        try:
            doc = json.loads(body)
        except ValueError:
            if retry is not None:
                self._fail("server", f"Prometheus at {self.url} is overloaded (HTTP {r.status_code}), "
                                     f"retry after {retry:g}s", retry)
            text = body[:200].decode("utf-8", errors="backslashreplace")
            self._fail("bad_response", f"{self.url}{path} did not return Prometheus API JSON (HTTP {r.status_code}): {text!r}")
        if not isinstance(doc, dict) or doc.get("status") != "success":
            err = doc.get("error", "unknown error") if isinstance(doc, dict) else "unexpected body"
            etype = doc.get("errorType", "") if isinstance(doc, dict) else ""
            kind = "bad_query" if etype == "bad_data" or r.status_code == 400 else ("timeout" if etype == "timeout" else "server")
            self._fail(kind, f"Prometheus {etype or 'error'} (HTTP {r.status_code}): {err}", retry)
        self._note(doc, "warnings", logging.WARNING)  # e.g. a partial answer of Thanos or Mimir: used, and said once
        self._note(doc, "infos", logging.INFO)
        data = doc.get("data")
        if not isinstance(data, dict) or "resultType" not in data:
            self._fail("bad_response", f"{self.url}{path}: response has no data.resultType")
        if data["resultType"] in ("vector", "matrix", "scalar") and not isinstance(data.get("result"), list):
            self._fail("bad_response", f"{self.url}{path}: data.result of a {data['resultType']} is not a list")
        return data

    def _read(self, r: httpx.Response, path: str) -> bytes:
        """The body, at most `max_bytes` of it: a runaway answer is refused before it is all in memory."""
        size = int(r.headers.get("content-length") or 0)
        if size > self.max_bytes:
            self._fail("bad_response", f"{self.url}{path}: answer of {size:,} bytes exceeds the {self.max_bytes:,} limit")
        chunks, n = [], 0
        for chunk in r.iter_bytes():
            n += len(chunk)
            if n > self.max_bytes:
                self._fail("bad_response", f"{self.url}{path}: answer exceeds the {self.max_bytes:,} byte limit")
            chunks.append(chunk)
        return b"".join(chunks)

    def _note(self, doc: dict, key: str, level: int) -> None:
        notes = doc.get(key) or []
        for note in notes if isinstance(notes, list) else [notes]:
            text = str(note)[:300]
            if text not in self._noted and len(self._noted) < 1000:  # once per text, bounded
                self._noted.add(text)
                log.log(level, "Prometheus %s at %s: %s", key[:-1], self.url, text)

    def _fail(self, kind: str, message: str, retry_after: float | None = None):
        selfmetrics.PROM_API_ERRORS.labels(kind).inc()
        raise PrometheusAPIError(kind, message, retry_after)

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
        """Instant vector -> one row per series: its labels as columns, plus `value` (malformed series skipped, counted)."""
        data = self.query(promql, at)
        if data["resultType"] not in ("vector", "scalar"):
            self._fail("bad_query", f"expected an instant vector, got {data['resultType']}")
        if data["resultType"] == "scalar":
            dec = decode_vector([{"metric": {}, "value": data["result"]}])
        else:
            dec = decode_vector(data["result"])
        dec.count(self.url)
        out = dec.labels.copy()
        out["value"] = dec.value
        return out

    def query_range_frame(self, promql: str, start, end, step: float) -> pd.DataFrame:
        """Range query -> long frame: labels, `time` (UTC), `value` (malformed series and points skipped, counted)."""
        data = self.query_range(promql, start, end, step)
        if data["resultType"] != "matrix":
            self._fail("bad_response", f"expected a range matrix, got {data['resultType']}")
        dec = decode_matrix(data["result"])
        dec.count(self.url)
        out = pd.DataFrame({s.TIME: pd.to_datetime(dec.time, unit="s", utc=True), "value": dec.value})
        return pd.concat([out, dec.labels], axis=1) if len(dec.labels.columns) else out

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
        self.failed_rounds = 0  # rounds that raised unexpectedly (the loop went on)

    @selfmetrics.counts_cpu("prom_api")
    def poll(self) -> int:
        try:
            data = self.client.query(self.match)
        except PrometheusAPIError as exc:
            self.last_error = exc
            log.warning("Prometheus poll failed: %s", exc)
            return 0
        self.last_error = None
        if data["resultType"] != "vector":
            return 0
        dec = decode_vector(data["result"])
        dec.count(self.client.url, self.name)
        if not len(dec.value):
            return 0
        col = dec.labels.get
        df = pd.DataFrame({c: (col(c).fillna("unknown").astype(str) if c in dec.labels else "unknown")
                           for c in s.ISTIO_LABELS}, index=pd.RangeIndex(len(dec.value)))
        df[s.METRIC] = col("__name__").fillna("").astype(str) if "__name__" in dec.labels else ""
        df[s.LE] = pd.to_numeric(col("le"), errors="coerce") if "le" in dec.labels else math.nan
        df[s.VALUE] = dec.value
        df[s.TIME] = pd.to_datetime(dec.time, unit="s", utc=True)
        df[s.TARGET] = col("instance").fillna("prometheus").astype(str) if "instance" in dec.labels else "prometheus"
        df[s.LABELS] = label_text(dec.labels, skip=("__name__", "le"))
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
            try:
                self.poll()
            except Exception as exc:  # one bad round must not end the polling for good (#18)
                selfmetrics.PROM_API_ERRORS.labels("internal").inc()
                self.failed_rounds += 1
                survived(self.name, exc)
            wait = self.interval if self.last_error is None else max(self.interval, self.last_error.retry_after or 0.0)
            self._stop.wait(max(0.0, wait - (time.monotonic() - t0)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.client.timeout + 5)
            self._thread = None


# ---- decoding answers, one series at a time isolated -------------------------------------
#: Why a series (or a point of one) was skipped; the `reason` label of meshscope_collector_malformed_total.
REASONS = ("not_object", "bad_labels", "native_histogram", "no_sample", "bad_sample", "bad_timestamp", "bad_value")
SOURCE = "prom_api"  # the `source` label of the skipped-series counts (the UI's "Telemetry refused" lists it)
_INF_TEXT = frozenset(("+inf", "inf", "-inf"))


@dataclass
class Decoded:
    """An answer's usable samples, columnar: `labels` one row per sample (a matrix series' labels repeat per
    point), `time` in unix seconds, `value` as float (Prometheus' own NaN and +-Inf kept), and what was
    skipped (`rejected` reason -> count, `samples` reason -> first bad record)."""

    labels: pd.DataFrame
    time: np.ndarray
    value: np.ndarray
    rejected: dict[str, int] = field(default_factory=dict)
    samples: dict[str, Any] = field(default_factory=dict)

    def skip(self, reason: str, record: Any, n: int = 1) -> None:
        if n:
            self.rejected[reason] = self.rejected.get(reason, 0) + n
            self.samples.setdefault(reason, record)

    def count(self, origin: str, source: str = SOURCE) -> None:
        """Count what was skipped in meshscope's `/metrics`, one kept sample per reason."""
        for reason, n in self.rejected.items():
            selfmetrics.reject(source, origin, reason, _sample_json(self.samples.get(reason)), n=n,
                               message=f"series skipped: {reason.replace('_', ' ')}")


def decode_vector(result: Any) -> Decoded:
    """An instant vector's `data.result` -> one sample per series; a malformed series is skipped, the rest read.

    The common case (every series well formed) is columnar: two list comprehensions and numpy over
    the values. Only an answer in which that fails is walked series by series to find the bad ones."""
    result = result if isinstance(result, list) else []
    try:
        return _vector_fast(result)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        out = _empty_decoded()
        good = [r for r in result if _series_ok(r, "value", out)]
        fast = _vector_fast(good)
        for reason, n in out.rejected.items():
            fast.skip(reason, out.samples[reason], n)
        return fast


def decode_matrix(result: Any) -> Decoded:
    """A range query's `data.result` -> one sample per point; a malformed series or point is skipped."""
    result = result if isinstance(result, list) else []
    try:
        return _matrix_fast(result)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        out = _empty_decoded()
        good = []
        for r in result:
            if not _series_ok(r, "values", out):
                continue
            points = [p for p in r["values"] if _pair(p)]
            out.skip("bad_sample", r, len(r["values"]) - len(points))
            good.append({"metric": r.get("metric"), "values": points})
        fast = _matrix_fast(good)
        for reason, n in out.rejected.items():
            fast.skip(reason, out.samples[reason], n)
        return fast


def _vector_fast(result: list) -> Decoded:
    metrics = [r["metric"] if r.get("metric") is not None else {} for r in result]
    if not all(type(m) is dict for m in metrics):
        raise TypeError("a series' metric is not an object")
    pairs = np.array([r["value"] for r in result], dtype=object)
    if pairs.shape != (len(result), 2) and len(result):
        raise ValueError("a sample is not a [time, value] pair")
    counts = np.ones(len(result), dtype=np.int64)
    return _columns(result, metrics, pairs.reshape(-1, 2), counts)


def _matrix_fast(result: list) -> Decoded:
    metrics = [r["metric"] if r.get("metric") is not None else {} for r in result]
    if not all(type(m) is dict for m in metrics):
        raise TypeError("a series' metric is not an object")
    points = [r["values"] for r in result]
    if not all(type(p) is list for p in points):
        raise TypeError("a series' values is not a list")
    counts = np.fromiter((len(p) for p in points), dtype=np.int64, count=len(points))
    pairs = np.array(list(chain.from_iterable(points)), dtype=object)
    if pairs.shape != (int(counts.sum()), 2) and counts.sum():
        raise ValueError("a point is not a [time, value] pair")
    return _columns(result, metrics, pairs.reshape(-1, 2), counts)


def _columns(result: list, metrics: list[dict], pairs: np.ndarray, counts: np.ndarray) -> Decoded:
    """Labels, times and values as columns; bad timestamps and values are masked out (vectorised) and counted."""
    labels = pd.DataFrame.from_records(metrics, index=range(len(metrics))) if metrics else pd.DataFrame()
    series = np.repeat(np.arange(len(metrics)), counts)
    at, tnested = _numbers(pd.Series(pairs[:, 0], dtype=object), ("floating", "integer", "mixed-integer-float"))
    text = pd.Series(pairs[:, 1], dtype=object)
    value, vnested = _numbers(text, ("string",))
    nested = tnested | vnested  # a list or object where a number belongs: the pair is malformed, not its number
    bad_time = ~np.isfinite(at) & ~nested
    odd = np.flatnonzero(~np.isfinite(value) & ~nested & ~bad_time)  # NaN, +-Inf: Prometheus' own, or unreadable
    low = text.iloc[odd].astype(str).str.strip().str.lower()
    bad_value = np.zeros(len(value), dtype=bool)
    bad_value[odd] = (np.isnan(value[odd]) & (low != "nan").to_numpy()) | \
        (np.isinf(value[odd]) & ~low.isin(_INF_TEXT).to_numpy())
    drop = bad_time | bad_value | nested
    if drop.any() or len(series) != len(metrics):
        labels = labels.iloc[series[~drop]].reset_index(drop=True)
    out = Decoded(labels, at[~drop], value[~drop])
    for reason, mask in (("bad_sample", nested), ("bad_timestamp", bad_time), ("bad_value", bad_value)):
        if mask.any():
            out.skip(reason, result[int(series[np.argmax(mask)])], int(mask.sum()))
    return out


def _numbers(col: pd.Series, plain: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A column of JSON scalars as floats (NaN where unreadable) and where it held a list or object. Prometheus
    sends times as numbers and values as strings (`plain`): only a column of other types is read as text."""
    if pd.api.types.infer_dtype(col, skipna=False) in plain:
        return pd.to_numeric(col, errors="coerce").to_numpy(dtype=float), np.zeros(len(col), dtype=bool)
    text = col.astype(str)  # true/false are not numbers here: "True" is unreadable
    nested = text.str.startswith(("[", "{")).to_numpy(dtype=bool) if len(col) else np.zeros(0, dtype=bool)
    return pd.to_numeric(text, errors="coerce").to_numpy(dtype=float), nested


def _series_ok(r: Any, key: str, out: Decoded) -> bool:
    """Whether one series has the shape `key` ("value" or "values") needs; else it is counted in `out`."""
    if not isinstance(r, dict):
        out.skip("not_object", r)
    elif r.get("metric") is not None and not isinstance(r["metric"], dict):
        out.skip("bad_labels", r)
    elif key not in r:
        out.skip("native_histogram" if ("histogram" in r or "histograms" in r) else "no_sample", r)
    elif key == "value" and not _pair(r["value"]):
        out.skip("bad_sample", r)
    elif key == "values" and not isinstance(r["values"], list):
        out.skip("bad_sample", r)
    else:
        return True
    return False


def _pair(p: Any) -> bool:
    """A [time, value] pair of two scalars (what numpy can lay out as one row of two)."""
    return isinstance(p, (list, tuple)) and len(p) == 2 and not any(isinstance(x, (list, tuple, dict)) for x in p)


def _empty_decoded() -> Decoded:
    return Decoded(pd.DataFrame(), np.empty(0), np.empty(0))


def _sample_json(record: Any) -> str:
    try:
        return json.dumps(record)[:selfmetrics.SAMPLE_BYTES + 1]
    except (TypeError, ValueError):
        return repr(record)[:selfmetrics.SAMPLE_BYTES + 1]


def label_text(labels: pd.DataFrame, skip: Iterable[str] = ()) -> np.ndarray:
    """Each row's labels as `format_labels` writes them (names sorted, as Prometheus sends them), built by
    Arrow's string kernels a column at a time (an absent label is null and skipped in the join)."""
    parts = []
    for name in sorted(c for c in labels.columns if c not in set(skip)):
        col = labels[name]
        vals = pa.array(col.where(col.isna(), col.astype(str)).to_numpy(dtype=object), type=pa.string(), from_pandas=True)
        for old, new in (("\\", "\\\\"), ("\n", "\\n"), ('"', '\\"')):
            vals = pc.replace_substring(vals, old, new)
        parts.append(pc.fill_null(pc.binary_join_element_wise(f'{name}="', vals, '",', ""), ""))
    if not parts:
        return np.full(len(labels), "", dtype=object)
    joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "")
    return pc.utf8_rtrim(joined, characters=",").to_numpy(zero_copy_only=False).astype(object)


_SURVIVED: set[tuple[str, str]] = set()


def survived(loop: str, exc: BaseException) -> None:
    """A polling loop's round failed unexpectedly and the loop goes on: logged with its traceback once per loop
    and exception type, not once per round (the caller counts every one)."""
    key = (loop, type(exc).__name__)
    if key not in _SURVIVED:
        _SURVIVED.add(key)
        log.error("%s: a round failed, the next one runs (logged once per kind)", loop, exc_info=exc)


def _retry_after(header: str | None) -> float | None:
    """Retry-After in seconds (delta-seconds form; an HTTP date or garbage counts as 'some time': 30 s)."""
    if header is None:
        return None
    try:
        return min(max(float(header), 0.0), 3600.0)
    except ValueError:
        return 30.0


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
