"""Hostile access-log input: no line stops ingestion, and the good lines around a bad one are
stored exactly once (parsers and the tailer, including across a restart).

Each hostile construction stands for a class production sends on a bad day: integers at and
past 2^63 / 2^64-1 (Envoy's byte counters are uint64), impossible or out-of-range timestamps,
NaN/Infinity/1e400, deep nesting, invalid UTF-8, a 10 MB line, truncation anywhere, binary
garbage; plus random byte mutations of the real recorded lines (hypothesis).
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from collector import schema as s
from collector import selfmetrics
from collector.parse.access_log import LogContext, parse_json_log, parse_text_log
from collector.sources.access_log import AccessLogTailer, LogFile
from collector.store import TelemetryStore

DATA = Path(__file__).parent / "data"
CTX = LogContext("fuzz.log", "productpage-v1", "bookinfo", "spiffe://cluster.local/ns/bookinfo/sa/productpage")
JSON_REAL = (DATA / "envoy_access_json.log").read_bytes().splitlines()
TEXT_REAL = (DATA / "envoy_access_text.log").read_bytes().splitlines()
JSON_OBJ = json.loads(JSON_REAL[0])
RID = JSON_OBJ["request_id"]
NUMBERS = ("response_code", "bytes_received", "bytes_sent", "duration")
BIG_INTS = [2**63 - 1 + 1, 2**64 - 1, 2**64, 10**40, -1, -(2**63) - 1]
BAD_TIMES = ["2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
             "2026-11-21T25:61:61Z", "2026-11-21T00:00:00+99:99", "", "-", "now", "\u0661\u0662"]


def _good_json(i: int) -> bytes:
    line = JSON_REAL[i % len(JSON_REAL)]
    return line.replace(json.loads(line)["request_id"].encode(), f"good-{i:04d}".encode())


def _good_text(i: int) -> bytes:
    line = TEXT_REAL[i % len(TEXT_REAL)]
    rid = line.split(b'"')[9]
    return line.replace(b'"' + rid + b'"', f'"good-{i:04d}"'.encode())


def _json_hostile() -> list[bytes]:
    """One line per hostile construction of the JSON format."""
    out: list[bytes] = []

    def with_(**kv) -> bytes:
        o = dict(JSON_OBJ, request_id="bad")
        o.update(kv)
        return json.dumps(o).encode()

    for k in NUMBERS:
        out += [with_(**{k: v}) for v in BIG_INTS]
        for lit in (b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1.5e308", b'"12x"', b"true", b"[1]", b"{}"):
            out.append(with_(**{k: 0}).replace(f'"{k}": 0'.encode(), f'"{k}": '.encode() + lit))
    out += [with_(start_time=t) for t in BAD_TIMES] + [with_(start_time=12), with_(start_time=None)]
    deep = b"[" * 100_000 + b"]" * 100_000
    out.append(with_(path="x").replace(b'"path": "x"', b'"path": ' + deep))
    out.append(b'{"a":' * 20_000 + b"1" + b"}" * 20_000)
    out.append(with_(path="\u00e9").replace("\u00e9".encode("unicode_escape"), b"\xff\xfe\xc3"))
    out.append(with_(path="A" * (10 * 2**20)))
    out.append(bytes(range(256)).replace(b"\n", b""))
    out.append(b"\x00" * 1000)
    out.append(with_()[: len(with_()) // 2])
    return out


def _text_hostile() -> list[bytes]:
    g = _good_text(0).replace(b"good-0000", b"bad")
    fields = g.split(b" ")
    out: list[bytes] = []
    for v in (b"18446744073709551615", b"18446744073709551616", b"9223372036854775808", b"-1", b"1e400", b"NaN", b"x"):
        for pos in (5, 10, 11, 12):  # response code, bytes received/sent, duration
            out.append(b" ".join(fields[:pos] + [v] + fields[pos + 1:]))
    stamp = g[1:g.index(b"]")]
    out += [g.replace(stamp, t.encode() or b"x") for t in BAD_TIMES]
    out += [g.replace(b"GET", b"G\xff\xfeT"), b"x" * (10 * 2**20), bytes(range(256)).replace(b"\n", b""),
            b"[" * 100_000, g[: len(g) // 3], g.replace(b'"', b"")]
    return out


def _check(parse, good, bad_line: bytes) -> None:
    data = good(1) + b"\n" + bad_line + b"\n" + good(2) + b"\n"
    result = parse(data, CTX)
    ids = list(result.table.column(s.REQUEST_ID).to_pylist())
    assert ids.count("good-0001") == 1 and ids.count("good-0002") == 1, ids
    assert len(ids) <= 3
    if len(ids) == 2:  # refused: named by line number, reason and a bounded sample
        assert [e.line for e in result.errors] == [2]
        assert result.errors[0].reason and len(result.errors[0].sample) <= 512


@pytest.mark.parametrize("k", range(len(_json_hostile())))
def test_json_hostile_line_is_isolated(k):
    _check(parse_json_log, _good_json, _json_hostile()[k])


@pytest.mark.parametrize("k", range(len(_text_hostile())))
def test_text_hostile_line_is_isolated(k):
    _check(parse_text_log, _good_text, _text_hostile()[k])


def test_overflow_and_impossible_dates_are_refused_not_altered():
    """The classes that used to stop the batch are refused with their own reason (never clamped)."""
    lines = [json.dumps(dict(JSON_OBJ, request_id="bad", bytes_sent=2**64 - 1)).encode(),
             json.dumps(dict(JSON_OBJ, request_id="bad", start_time="2026-02-30T00:00:00Z")).encode(),
             json.dumps(dict(JSON_OBJ, request_id="bad", duration=0)).encode().replace(b'"duration": 0', b'"duration": NaN')]
    r = parse_json_log(b"\n".join([_good_json(1), *lines, _good_json(2)]) + b"\n", CTX)
    assert sorted(r.table.column(s.REQUEST_ID).to_pylist()) == ["good-0001", "good-0002"]
    assert [e.reason for e in r.errors] == ["number_out_of_range", "bad_timestamp", "invalid_json"]


def _mutate(line: bytes, rnd: random.Random, n: int) -> bytes:
    b = bytearray(line)
    for _ in range(n):
        op = rnd.randrange(4)
        i = rnd.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(i, len(b) - 1)] = rnd.randrange(256)
        elif op == 1:
            b[i:i] = bytes([rnd.choice(b'"{}[],:\\\xff0123456789-e. ')])
        elif op == 2 and b:
            del b[min(i, len(b) - 1)]
        else:
            b[i:i] = rnd.choice([b"18446744073709551615", b"NaN", b"1e400", b"\xc3", b'"', b"-"])
    return bytes(b).replace(b"\n", b" ")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), n=st.integers(1, 6), fmt=st.sampled_from(["json", "text"]))
def test_mutated_real_lines_never_escape_and_neighbours_survive(seed, n, fmt):
    rnd = random.Random(seed)
    good, parse, real = ((_good_json, parse_json_log, JSON_REAL) if fmt == "json" else (_good_text, parse_text_log, TEXT_REAL))
    bad = _mutate(good(3).replace(b"good-0003", b"bad-0003"), rnd, n)
    _check(parse, good, bad)


# ---------------------------------------------------------------------------- the tailer
def _rids(store: TelemetryStore) -> list[str]:
    return list(store.requests()[s.REQUEST_ID])


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_tailer_moves_past_every_hostile_line_and_across_a_restart(tmp_path, fmt):
    good, hostile = (_good_json, _json_hostile) if fmt == "json" else (_good_text, _text_hostile)
    log, data = tmp_path / "bookinfo.reviews-v1.log", tmp_path / "store"
    bad = hostile()
    body = b"".join(good(i) + b"\n" + bad[i] + b"\n" for i in range(len(bad)))
    log.write_bytes(body)
    before = selfmetrics.malformed_total("access_log", str(log))
    with TelemetryStore(data, window_s=10**10) as store:
        t = AccessLogTailer([str(log)], store)
        t.poll()
        t.stop()
        ids = _rids(store)
    assert sorted(i for i in ids if i.startswith("good")) == [f"good-{i:04d}" for i in range(len(bad))]
    refused = selfmetrics.malformed_total("access_log", str(log)) - before
    assert refused >= len(bad) - (len(ids) - len(bad))  # every line not stored was counted
    samples = [r for r in selfmetrics.recent_rejects(limit=200) if r.origin == str(log)]
    assert samples and all(len(r.sample) <= 4 * selfmetrics.SAMPLE_BYTES + 3 for r in samples)
    # restart on the same data directory: resumes past the bad lines, new lines still flow
    with open(log, "ab") as f:
        f.write(good(900) + b"\n")
    with TelemetryStore(data, window_s=10**10) as store:
        t = AccessLogTailer([str(log)], store)
        t.poll()
        t.stop()
        ids2 = _rids(store)
    assert sorted(ids2) == sorted(ids + ["good-0900"])


class _FailingStore(TelemetryStore):
    """A store whose writes fail for any batch holding a poisoned request: a fault that no
    parser fix can prevent (disk trouble, a bug) must still not pin the tailer in place."""

    def add_requests(self, table, checkpoint=None):
        if table.num_rows and "poison" in table.column(s.REQUEST_ID).to_pylist():
            raise RuntimeError("write failed")
        return super().add_requests(table, checkpoint=checkpoint)


def test_a_batch_that_keeps_failing_is_skipped_and_the_other_files_go_on(tmp_path):
    a, b = tmp_path / "ns.a.log", tmp_path / "ns.b.log"
    a.write_bytes(_good_json(1).replace(b"good-0001", b"poison") + b"\n")
    b.write_bytes(_good_json(2) + b"\n")
    store = _FailingStore(window_s=10**10)
    t = AccessLogTailer([str(a), str(b)], store)
    for _ in range(3):
        t.poll()
    assert _rids(store) == ["good-0002"]  # b was never held up by a
    assert selfmetrics.malformed_total("access_log", str(a), "store_failed") == 1
    with open(a, "ab") as f:
        f.write(_good_json(3) + b"\n")
    t.poll()
    t.stop()
    assert sorted(_rids(store)) == ["good-0002", "good-0003"]


def test_invalid_utf8_inside_a_json_string_is_refused_by_line():
    """Arrow's JSON reader passes invalid UTF-8 inside a string value through; such a line must be refused, not stored."""
    bad = _good_json(3).replace(b"good-0003", b"bad-\xe9003")
    data = _good_json(1) + b"\n" + bad + b"\n" + _good_json(2) + "\n".encode() + _good_json(4).replace(b'"/ok"', "\"/caf\u00e9\"".encode()) + b"\n"
    r = parse_json_log(data, CTX)
    assert r.table.column(s.REQUEST_ID).to_pylist() == ["good-0001", "good-0002", "good-0004"]
    assert [(e.line, e.reason) for e in r.errors] == [(2, "invalid_utf8")]
