"""JSON streams: several documents in one buffer, however they are laid out, each read; one bad document costs itself.

The same access-log records are written one per line (the reference), back to back without newlines, with spaces,
pretty-printed at several indents, and all of these mixed; every layout must give the reference's rows exactly.
Bad documents (truncated, NaN, not an object, text between documents, nested too deep) are refused one each, named
by the line they start on, and every other document is kept.
"""
from __future__ import annotations

import json

import pytest

from collector.parse.access_log import LogContext, parse_json_log
from collector.parse.json_stream import documents

CTX = LogContext("t", "productpage-v1", "bookinfo", "spiffe://cluster.local/ns/bookinfo/sa/productpage")


def _records(n: int) -> list[dict]:
    return [{"start_time": f"2024-01-01T00:00:{i:02d}.000Z", "method": "GET", "path": f"/p/{i}?q={{x}}{{y}}",
             "protocol": "HTTP/1.1", "response_code": 200 + i, "response_flags": "-", "bytes_received": i,
             "bytes_sent": 10 * i, "duration": i, "upstream_cluster": "outbound|9080||reviews.bookinfo.svc.cluster.local",
             "authority": "reviews:9080", "user_agent": 'a "}{" agent', "nested": {"a": [1, {"b": "}"}]}} for i in range(n)]


LAYOUTS = {
    "no separator": lambda docs: "".join(json.dumps(d) for d in docs) + "\n",
    "spaces": lambda docs: " ".join(json.dumps(d) for d in docs),
    "indent 2": lambda docs: "\n".join(json.dumps(d, indent=2) for d in docs) + "\n",
    "indent 4, blank lines": lambda docs: "\n\n".join(json.dumps(d, indent=4) for d in docs) + "\n",
    "mixed": lambda docs: "".join(json.dumps(d, indent=2 if i % 3 == 0 else None) + ("\n" if i % 2 else "")
                                  for i, d in enumerate(docs)) + "\n",
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_reads_as_one_document_per_line(layout):
    docs = _records(12)
    want = parse_json_log("\n".join(json.dumps(d) for d in docs) + "\n", CTX)
    assert want.errors == [] and want.table.num_rows == 12
    got = parse_json_log(LAYOUTS[layout](docs), CTX)
    assert [str(e) for e in got.errors] == []
    assert got.table.equals(want.table)


def test_bad_documents_are_refused_alone_by_the_line_they_start_on():
    docs = _records(6)
    pretty = [json.dumps(d, indent=2) for d in docs]
    height = pretty[0].count("\n") + 1
    parts = [pretty[0], pretty[1][:-40], pretty[2], "[1, 2]", pretty[3], "this is not json",
             pretty[4].replace('"duration": 4', '"duration": NaN'), "[" * 5000 + "]" * 5000, pretty[5]]
    text = "\n".join(parts) + "\n"
    starts, line = [], 1
    for p in parts:
        starts.append(line)
        line += p.count("\n") + 1
    result = parse_json_log(text, CTX)
    assert [r["response_code"] for r in result.table.to_pylist()] == [200, 202, 203, 205]
    refused = {e.line: e.reason for e in result.errors}
    # the truncated document runs into the next one: refused there, reading resumes at the next top-level object
    # a bad line that is one whole line is refused as the line reader refuses it, whatever its neighbours
    assert refused == {starts[1]: "invalid_json", starts[3]: "not_json", starts[5]: "not_json",
                       starts[6]: "invalid_json", starts[7]: "not_json"}, (refused, starts, height)
    assert len(result.errors) == 5


def test_documents_reports_each_document_and_its_line():
    text = '{"a": 1}{"b": 2}\n\n  {\n "c": 3\n}\n[4] "x" {"d": \n'
    got = [(d.line, d.value, d.reason) for d in documents(text)]
    assert got == [(0, {"a": 1}, ""), (0, {"b": 2}, ""), (2, {"c": 3}, ""), (5, [4], ""), (5, "x", ""),
                   (5, None, "invalid_json")]
