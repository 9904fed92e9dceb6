"""Exposition under hostile input: the fast and careful paths agree on every line, both agree
with prometheus_client where the format allows the line, and a forbidden line is refused,
never altered (differential test on mutated real Envoy/Istio scrapes)."""
from __future__ import annotations

import math
import random
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collector.parse.exposition import format_labels, parse_exposition, parse_sample_line

REAL = (Path(__file__).parent / "data" / "envoy_stats_prometheus.txt").read_text()
SAMPLES = [line for line in REAL.splitlines() if line and not line.startswith("#")]
ISTIO = ('istio_requests_total{reporter="source",source_workload="productpage-v1",destination_service='
         '"reviews.bookinfo.svc.cluster.local",response_code="200",response_flags="-"} 42')
BUCKET = ('istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload="reviews-v1",'
          'response_code="503",le="25"} 7')
# classes the Prometheus text format forbids but prometheus_client's lenient parser lets through
STRICTER = ("invalid escape", "expected a label name", "unexpected text after the value", "invalid histogram bound",
            "invalid timestamp", "missing value")  # the last: prometheus_client reads "NaN" as Na=N
_LEGACY_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LEGACY_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _outside_format_0_0_4(prom) -> bool:
    """prometheus_client also reads names the 0.0.4 text format does not allow (UTF-8 names of
    newer Prometheus, unquoted): a refusal of those is the format's rule, not a disagreement."""
    return any(not _LEGACY_NAME.fullmatch(name) or any(not _LEGACY_LABEL.fullmatch(k) for k in labels)
               for name, labels, _ in prom)


def _mutate(line: str, rnd: random.Random) -> str:
    b = list(line)
    for _ in range(rnd.randint(1, 3)):
        i = rnd.randrange(len(b) + 1)
        op = rnd.randrange(5)
        piece = rnd.choice(['"', ",", "{", "}", "=", "\\", " ", "le=\"5\"", ',le="', "__name__", "reporter", "\t",
                            "NaN", "+Inf", "1e400", "-", "0x1", "é", "\\q", '\\"', "\\n", "a", "1"])
        if op == 0 and b:
            del b[min(i, len(b) - 1)]
        elif op == 1:
            b[i:i] = list(piece)
        elif op == 2 and b:  # duplicate a run (a label given twice)
            j = rnd.randrange(len(b) + 1)
            b[j:j] = b[i:i + rnd.randint(1, 40)]
        elif op == 3:
            del b[i:]
        else:
            b[i:i + 1] = list(piece)
    return "".join(b).replace("\n", " ").replace("\r", " ")


def _careful(line: str):
    try:
        name, labels, value = parse_sample_line(line)
    except ValueError as exc:
        return "refused", str(exc)
    le = labels.get("le")
    return name, format_labels({k: v for k, v in labels.items() if k != "le"}), (float(le) if le is not None else None), value


def _prom(line: str):
    try:
        return [(s.name, s.labels, s.value) for fam in text_string_to_metric_families(line + "\n") for s in fam.samples]
    except Exception:  # noqa: BLE001 - its refusals come in several types
        return None


def _same_float(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def test_fast_and_careful_paths_agree_and_match_prometheus_client_on_mutated_scrapes():
    rnd = random.Random(21)
    seeds = SAMPLES + [ISTIO, BUCKET] * 200
    lines = [_mutate(rnd.choice(seeds), rnd) for _ in range(4000)]
    lines = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    result = parse_exposition("\n".join(lines) + "\n")
    refused = {e.line for e in result.errors}
    rows = iter(result.table.to_pylist())
    disagree, stricter, accepted = [], 0, 0
    for n, line in enumerate(lines, start=1):
        careful = _careful(line)
        if n in refused:
            if careful[0] != "refused":
                disagree.append((line, "fast refused, careful accepted"))
            continue
        row = next(rows)
        fast = (row["metric"], row["labels"], None if math.isnan(row["le"]) else row["le"], row["value"])
        if careful[0] == "refused" or fast[:3] != careful[:3] or not _same_float(fast[3], careful[3]):
            disagree.append((line, fast, careful))
            continue
        accepted += 1
        prom = _prom(line)
        if prom is None or len(prom) != 1 or prom[0][0] != fast[0] or not _same_float(prom[0][2], fast[3]):
            disagree.append((line, "prometheus_client reads it otherwise", prom))
            continue
        prom_labels = {k: v for k, v in prom[0][1].items() if k != "le"}
        if format_labels(prom_labels) != fast[1]:
            disagree.append((line, "labels differ from prometheus_client", prom))
    assert disagree == []
    lenient = []
    for n, line in enumerate(lines, start=1):  # refused lines prometheus_client accepts: only the stricter classes
        if n in refused and _prom(line):
            message = next(e.message for e in result.errors if e.line == n)
            if not any(k in message for k in STRICTER) and not _outside_format_0_0_4(_prom(line)):
                lenient.append((line, message, _prom(line)))
            stricter += 1
    assert lenient == []
    assert next(rows, None) is None
    assert accepted > 500 and len(refused) > 500  # both sides of the line were exercised


@pytest.mark.parametrize("line,reason", [
    ('istio_requests_total{reporter="source,le="5"} 3', "bad_syntax"),
    ('m{__name__="x"} 1', "reserved_label"),
    ('m{a="1",__meta="x",le="2"} 1', "reserved_label"),
    ('m{a="1",a="2"} 1', "duplicate_label"),
    ('m{a="1",b="2",a="3",le="1"} 1', "duplicate_label"),
    ('m{a="\\q"} 1', "bad_escape"),
    ("m{,} 1", "bad_name"),
    ('m{a="1"} 0x10', "bad_value"),
    (b'm{a="\xff"} 1', "invalid_utf8"),
])
def test_forbidden_lines_are_refused_never_altered(line, reason):
    good = 'istio_requests_total{reporter="source"} 1\n'
    text = (good.encode() + (line if isinstance(line, bytes) else line.encode()) + b"\n" + good.encode())
    r = parse_exposition(text)
    assert [(e.line, e.reason) for e in r.errors] == [(2, reason)]
    assert r.table.num_rows == 2 and set(r.table.column("reporter").to_pylist()) == {"source"}


def test_hostile_scrapes_never_raise():
    """10 MB line, binary garbage, a truncated scrape, NaN/Inf/1e400 values: refused or read, never an exception."""
    rnd = random.Random(4)
    for body in (b"m " + b"1" * (10 * 2**20) + b"\n" + REAL.encode(), bytes(rnd.randrange(256) for _ in range(100_000)),
                 REAL.encode()[: len(REAL) // 3], b"m NaN\nm +Inf\nm -Inf\nm 1e400\n", b"{" * 100_000, b"\x00" * 1000):
        r = parse_exposition(body)
        assert r.table.num_rows + len(r.errors) >= 1 or not body.strip()
