"""Prometheus HTTP API answers under hostile input (#18): mutations of answers recorded from a real Prometheus
(`record_prom_answers.py`, Debian's 2.42 with native histograms). No exception escapes but
`PrometheusAPIError`; a malformed series is skipped and counted by reason; every other series is read,
exactly once; a polling thread outlives a round that raises."""
from __future__ import annotations

import copy
import http.server
import json
import logging
import math
import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from collector import schema as s
from collector import selfmetrics
from collector.sources.prom_api import (PrometheusAPIError, PrometheusClient, PrometheusSource, decode_matrix,
                                        decode_vector)
from collector.store import TelemetryStore
from meshscope.cluster import matrix_to_rates, range_times, vector_to_rates
from collector.sources.prom_api import _SURVIVED
from tests.util import wait_until

ANSWERS = json.loads((Path(__file__).parent / "data" / "prom_answers.json").read_text())
VECTORS = ("source_match", "rate_vector", "bucket_vector", "mixed_vector")
T = 1796655150.0

# (mutation, the reason it is counted under, or None when the series stays readable)
SERIES_MUTATIONS = [
    (lambda r: {"metric": r["metric"], "histogram": [r["value"][0], {"count": "1", "sum": "2", "buckets": []}]},
     "native_histogram"),
    (lambda r: {"metric": r["metric"]}, "no_sample"),
    (lambda r: {**r, "value": r["value"][:1]}, "bad_sample"),
    (lambda r: {**r, "value": [*r["value"], "x"]}, "bad_sample"),
    (lambda r: {**r, "value": []}, "bad_sample"),
    (lambda r: {**r, "value": "12"}, "bad_sample"),
    (lambda r: {**r, "value": None}, "bad_sample"),
    (lambda r: {**r, "value": [[r["value"][0]], r["value"][1]]}, "bad_sample"),
    (lambda r: {**r, "value": [r["value"][0], {"v": 1}]}, "bad_sample"),
    (lambda r: {**r, "value": [r["value"][0], "abc"]}, "bad_value"),
    (lambda r: {**r, "value": [r["value"][0], "1e400"]}, "bad_value"),
    (lambda r: {**r, "value": [r["value"][0], None]}, "bad_value"),
    (lambda r: {**r, "value": [r["value"][0], ""]}, "bad_value"),
    (lambda r: {**r, "value": ["soon", r["value"][1]]}, "bad_timestamp"),
    (lambda r: {**r, "value": [None, r["value"][1]]}, "bad_timestamp"),
    (lambda r: {**r, "value": [True, r["value"][1]]}, "bad_timestamp"),
    (lambda r: {**r, "metric": ["a", "b"]}, "bad_labels"),
    (lambda r: {**r, "metric": "up"}, "bad_labels"),
    (lambda r: {**r, "metric": 7}, "bad_labels"),
    (lambda r: json.dumps(r), "not_object"),
    (lambda r: None, "not_object"),
    (lambda r: [r["metric"], r["value"]], "not_object"),
    (lambda r: {**r, "value": [r["value"][0], "NaN"]}, None),  # Prometheus' own NaN: a reading
    (lambda r: {**r, "value": [r["value"][0], "+Inf"]}, None),
    (lambda r: {**r, "value": [r["value"][0], "-Inf"]}, None),
    (lambda r: {**r, "value": [r["value"][0], 3]}, None),  # a number, not a string: still a number
    (lambda r: {**r, "metric": None}, None),  # no labels
    (lambda r: {**r, "metric": {**r["metric"], "x": None}}, None),  # a null label reads as absent
    (lambda r: {**r, "warnings": ["partial"], "extra": {"a": 1}}, None),  # unknown keys are ignored
]


def _key(labels: dict, t: float, v: float) -> tuple:
    return tuple(sorted((k, str(x)) for k, x in labels.items() if x is not None and x == x)), t, \
        ("nan" if math.isnan(v) else v)


def _read(dec) -> list[tuple]:
    rows = dec.labels.to_dict("records")
    return sorted((_key(r, t, v) for r, t, v in zip(rows, dec.time.tolist(), dec.value.tolist())), key=repr)


@pytest.mark.parametrize("name", VECTORS)
def test_recorded_answers_read_whole(name):
    result = ANSWERS[name]["data"]["result"]
    dec = decode_vector(result)
    native = sum("histogram" in r for r in result)
    assert len(dec.value) == len(result) - native and dec.rejected == ({"native_histogram": native} if native else {})
    assert not dec.labels.columns.empty and np.isfinite(dec.time).all()


def test_native_histograms_are_skipped_and_counted():
    """A native histogram has no `le` buckets for the rate frame (exponential buckets, [rule, lower, upper, count]);
    reading it as classic buckets would mix two bucket layouts in one quantile, so it is skipped, counted, and
    every classic series beside it read."""
    for name in ("native_vector", "native_rate_vector", "mixed_vector"):
        result = ANSWERS[name]["data"]["result"]
        dec = decode_vector(result)
        assert dec.rejected == {"native_histogram": sum("histogram" in r for r in result)} != {}
    dec = decode_matrix(ANSWERS["native_matrix"]["data"]["result"])
    assert len(dec.value) == 0 and dec.rejected == {"native_histogram": 1}
    mixed = ANSWERS["mixed_vector"]["data"]["result"]
    before = selfmetrics.malformed_total("prom_api", "http://fixture", "native_histogram")
    rates = vector_to_rates(mixed, s.ISTIO_REQUESTS_TOTAL, "http://fixture")
    assert len(rates) == sum("value" in r for r in mixed) > 0
    assert selfmetrics.malformed_total("prom_api", "http://fixture", "native_histogram") == before + 1


@pytest.mark.parametrize("seed", range(40))
def test_mutated_vectors_read_every_good_series_once(seed):
    rnd = random.Random(seed)
    result = copy.deepcopy(ANSWERS[rnd.choice(VECTORS[:3])]["data"]["result"])
    picked = rnd.sample(range(len(result)), k=rnd.randint(1, min(6, len(result))))
    expected_reasons: dict[str, int] = {}
    readable = []
    for i, r in enumerate(result):
        if i in picked:
            mutate, reason = rnd.choice(SERIES_MUTATIONS)
            result[i] = mutate(copy.deepcopy(r))
            if reason:
                expected_reasons[reason] = expected_reasons.get(reason, 0) + 1
                continue
        readable.append(result[i])
    dec = decode_vector(result)
    assert dec.rejected == expected_reasons
    assert len(dec.value) + sum(dec.rejected.values()) == len(result)  # each series read or counted, once
    assert _read(dec) == _expected(readable)  # every readable series, exactly once


def _expected(series: list[dict]) -> list[tuple]:
    """What a series list reads as, by plain Python (the oracle the columnar decoding is checked against)."""
    return sorted((_key(r.get("metric") or {}, float(r["value"][0]), float(r["value"][1])) for r in series), key=repr)


def test_every_mutation_class_alone():
    """Each class of `SERIES_MUTATIONS` on every series of the largest recorded answer at once (10 rounds of
    mutations each leave the rest of the answer intact)."""
    base = ANSWERS["source_match"]["data"]["result"]
    for mutate, reason in SERIES_MUTATIONS:
        result = copy.deepcopy(base)
        result[::7] = [mutate(r) for r in result[::7]]
        dec = decode_vector(result)
        n_bad = len(result[::7])
        assert dec.rejected == ({reason: n_bad} if reason else {}), reason
        assert len(dec.value) == len(result) - (n_bad if reason else 0)


@pytest.mark.parametrize("seed", range(20))
def test_mutated_matrices_keep_good_points(seed):
    rnd = random.Random(seed)
    result = copy.deepcopy(ANSWERS["rate_matrix"]["data"]["result"]) + copy.deepcopy(
        ANSWERS["native_matrix"]["data"]["result"])
    total = sum(len(r.get("values", ())) for r in result)
    victim = rnd.randrange(len(result) - 1)
    point = rnd.randrange(len(result[victim]["values"]))
    bad = rnd.choice([[], [1], ["x", "1"], [T, "abc"], [T, "1e400"], "p", None, [[T], "1"]])
    result[victim]["values"][point] = bad
    dec = decode_matrix(result)
    assert len(dec.value) + sum(n for k, n in dec.rejected.items() if k != "native_histogram") == total
    assert dec.rejected["native_histogram"] == 1 and len(dec.value) == total - 1
    recorded = ANSWERS["rate_matrix"]["data"]["result"][0]["values"]
    times = range_times(recorded[0][0], recorded[-1][0], 1.0)
    frames = matrix_to_rates(result, s.ISTIO_REQUESTS_TOTAL, times, "http://fixture")
    assert sum(len(f) for f in frames) == total - 1


# ---- whole answers over real HTTP ---------------------------------------------------------------------------
class _Replay(http.server.BaseHTTPRequestHandler):
    """Serves the next queued (status, headers, body) to each POST."""
    queue: list = []

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length", 0)))
        status, headers, body = self.queue.pop(0) if len(self.queue) > 1 else self.queue[0]
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def replay():
    handler = type("H", (_Replay,), {"queue": []})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield handler.queue, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _bodies(rnd: random.Random) -> list[tuple[int, dict, bytes]]:
    """Whole-answer mutations: truncations, byte flips, proxies' HTML, throttling, wrong shapes."""
    doc = ANSWERS["source_match"]
    raw = json.dumps(doc).encode()
    out = [(200, {}, raw[:rnd.randrange(len(raw))]) for _ in range(5)]  # truncated JSON
    for _ in range(10):
        b = bytearray(raw)
        for _ in range(rnd.randint(1, 4)):
            b[rnd.randrange(len(b))] = rnd.choice(b'{}[],:"0aN\\\x00\xff')
        out.append((200, {}, bytes(b)))
    def shaped(**data):
        return json.dumps({"status": "success", "data": data}).encode()
    out += [
        (200, {"content-type": "text/html"}, b"<html><body>Sign in to continue</body></html>"),
        (429, {"retry-after": "7"}, b"Too Many Requests"),
        (503, {"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, b"<html>busy</html>"),
        (503, {}, json.dumps({"status": "error", "errorType": "unavailable", "error": "ingester down"}).encode()),
        (200, {}, shaped(resultType="vector", result={"a": 1})),
        (200, {}, shaped(resultType="vector", result=None)),
        (200, {}, shaped(resultType="matrix", result=doc["data"]["result"])),
        (200, {}, shaped(resultType="string", result=[T, "x"])),
        (200, {}, shaped(resultType="scalar", result=[T])),
        (200, {}, shaped(resultType="scalar", result="2")),
        (200, {}, json.dumps({**doc, "warnings": "one string", "infos": [{"x": 1}]}).encode()),
        (200, {}, json.dumps({"status": "success", "data": [1]}).encode()),
        (200, {}, b"null"),
        (200, {}, b""),
    ]
    return out


def test_whole_answers_fail_as_api_errors_only(replay):
    queue, url = replay
    rnd = random.Random(7)
    bodies = _bodies(rnd)
    outcomes = {"frame": 0, "error": 0}
    with PrometheusClient(url, timeout=5) as client:
        for body in bodies:
            queue[:] = [body]
            try:
                frame = client.query_vector("up")
            except PrometheusAPIError as exc:
                outcomes["error"] += 1
                assert exc.kind in ("bad_response", "bad_query", "server", "timeout")
                if body[0] == 429:
                    assert exc.retry_after == 7
                continue
            outcomes["frame"] += 1
            assert "value" in frame
    assert outcomes["error"] >= 15 and outcomes["frame"] >= 1, outcomes


def test_huge_answer_is_refused_before_it_is_read(replay):
    queue, url = replay
    queue[:] = [(200, {}, json.dumps(ANSWERS["source_match"]).encode())]
    with PrometheusClient(url, max_bytes=4096) as client:
        with pytest.raises(PrometheusAPIError) as e:
            client.query("up")
    assert e.value.kind == "bad_response" and "limit" in str(e.value)


class _FailingStore(TelemetryStore):
    """A store that raises on its first `failures` writes (what an unexpected bug in a round looks like)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def add_samples(self, df):
        if self.failures:
            self.failures -= 1
            raise RuntimeError("store broke")
        return super().add_samples(df)


def test_polling_thread_survives_bad_rounds(replay, caplog):
    """Rounds that raise are counted and logged once; the thread goes on and reads the next good answer."""
    queue, url = replay
    answer = _recent(ANSWERS["source_match"])  # the store keeps the last hour: recorded sample times would fall out
    answer["data"]["result"][3] = {"metric": {"a": "b"}, "histogram": [T, {}]}
    queue[:] = [(200, {}, json.dumps(answer).encode())]
    store = _FailingStore(failures=3)
    before = _internal_errors()
    with PrometheusClient(url) as client, caplog.at_level(logging.ERROR, logger="collector.sources.prom_api"):
        src = PrometheusSource(client, store, interval=0.05)
        src.start()
        try:
            wait_until(lambda: len(store.metrics()) >= len(answer["data"]["result"]) - 1, timeout=30,
                       what="a round after the failing ones")
        finally:
            src.stop()
    assert src.failed_rounds == 3
    assert _internal_errors() == before + 3
    assert sum("a round failed" in r.getMessage() for r in caplog.records) <= 1  # once per kind (per process)
    assert ("prom_api", "RuntimeError") in _SURVIVED
    m = store.metrics()
    assert len(m) % (len(answer["data"]["result"]) - 1) == 0  # whole answers, the native series never
    assert set(m[s.METRIC]) == {r["metric"]["__name__"] for r in ANSWERS["source_match"]["data"]["result"]}


def _recent(answer: dict) -> dict:
    """A copy of a recorded instant-vector answer with its sample times moved to now (offsets between them kept)."""
    out = copy.deepcopy(answer)
    samples = [r["value"] for r in out["data"]["result"] if "value" in r]
    shift = time.time() - max(float(v[0]) for v in samples)
    for v in samples:
        v[0] = float(v[0]) + shift
    return out


def _internal_errors() -> float:
    return selfmetrics.REGISTRY.get_sample_value("meshscope_prometheus_api_errors_total", {"kind": "internal"}) or 0.0


def test_label_text_is_format_labels():
    """The columnar labels string of a polled series equals `format_labels` of its sorted labels, escapes too."""
    from collector.parse.exposition import format_labels
    from collector.sources.prom_api import label_text

    series = [r["metric"] for r in ANSWERS["source_match"]["data"]["result"]]
    series += [{"a": 'q"uote', "b": "back\\slash", "c": "new\nline", "le": "5"}, {"a": "x,"}, {}, {"z": None, "a": "1"}]
    labels = decode_vector([{"metric": m, "value": [T, "1"]} for m in series]).labels
    want = [format_labels({k: v for k, v in sorted(m.items()) if k not in ("__name__", "le") and v is not None})
            for m in series]
    assert label_text(labels, skip=("__name__", "le")).tolist() == want
