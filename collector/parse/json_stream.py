"""A JSON *stream*: several JSON documents back to back in one file or body, as real writers produce them.

Why: JSON access logs written without newlines (`{...}{...}`), pretty-printed objects one after another (a
`jq .` of a log, Envoy's `json_format` with a multi-line template), concatenated OTLP/JSON exports (the
collector's file exporter, `cat a.json b.json`), all arrive as one buffer that a one-document reader refuses
whole. Here each document is read on its own: a document that does not parse is refused alone (with the line it
starts on), and reading resumes at the next line that starts a document in its first column, so one bad document costs only
itself. Nesting deeper than the limit and NaN/Infinity are refused like any invalid document.

Python's `raw_decode` walks the stream (one C call per document); it is only used for inputs that are not one
document per line, which the vectorised readers handle themselves.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

_DECODER = json.JSONDecoder(parse_constant=lambda name: _refuse_constant(name))
_SPACE = re.compile(r"[ \t\r\n]*")
# where reading resumes after a refused document: the next line that starts a document at its first column (pretty
# printers indent what is inside one, and close it with a bracket there)
_NEXT_OBJECT = re.compile(r"\n(?=[^\s}\]])")
MAX_DEPTH = 100  # documents nested deeper are refused (no access log or OTLP export nests near this)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


@dataclass
class Document:
    """One document of the stream: the 0-based line it starts on, and its value or why it was refused."""

    line: int
    value: object = None
    error: str = ""
    reason: str = ""


def documents(text: str) -> list[Document]:
    """Every document of `text` in order, refused ones included (value None, error and reason set)."""
    out: list[Document] = []
    counted = [0, 0]  # (position, its line): lines are counted forward from the previous document (C speed)

    def line_of(pos: int) -> int:
        counted[1] += text.count("\n", counted[0], pos)
        counted[0] = pos
        return counted[1]

    pos = _SPACE.match(text, 0).end()
    while pos < len(text):
        try:
            _depth_ok(text, pos)
            value, end = _DECODER.raw_decode(text, pos)
        except RecursionError:
            value, end, why = None, -1, ("JSON nested too deeply", "too_deep")
        except ValueError as exc:
            value, end, why = None, -1, (f"invalid JSON: {exc}"[:200], "invalid_json")
        if end < 0:
            out.append(Document(line_of(pos), None, *why))
            m = _NEXT_OBJECT.search(text, pos + 1)
            if m is None:
                break
            pos = m.end()
            continue
        out.append(Document(line_of(pos), value))
        pos = _SPACE.match(text, end).end()
    return out


def _depth_ok(text: str, pos: int) -> None:
    """Refuse a document nested deeper than MAX_DEPTH before the recursive decoder walks it (a cheap scan of the
    brackets up to its first MAX_DEPTH+1 opening ones; brackets in strings only make it stricter)."""
    depth = 0
    for ch in text[pos:pos + 4 * MAX_DEPTH]:
        if ch in "{[":
            depth += 1
            if depth > MAX_DEPTH:
                raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
        elif ch in "}]":
            depth -= 1
            if depth <= 0:
                return
        elif not ch.isspace() and depth == 0:
            return
