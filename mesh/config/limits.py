"""Bounds on what one input may cost to parse: size, nesting depth and YAML alias expansion.

meshscope reads untrusted YAML (pull requests in CI, bodies posted to the control
API, a cluster's API responses). YAML aliases let 400 bytes stand for billions of
nodes (the "billion laughs" document), and deep nesting exhausts the stack, so
every loader checks these limits and reports a breach as a problem naming the file
and line, in time and memory proportional to the input, never expanding it.

The limits are generous for real config (an `kubectl get -A -o yaml` dump of a
large cluster is tens of MB with no aliases) and can be raised by the operator
with the environment variables named below.
"""
from __future__ import annotations

import json
import os
from typing import Any

#: Largest YAML/JSON file or request body, in bytes ($MESHSCOPE_MAX_INPUT_BYTES).
MAX_INPUT_BYTES = 64 * 1024 * 1024
#: Deepest nesting of mappings and lists in one document ($MESHSCOPE_MAX_DEPTH).
MAX_DEPTH = 100
#: Nodes aliases may add beyond the text's own size, per stream ($MESHSCOPE_MAX_ALIAS_NODES).
#: Without aliases a stream of N bytes has fewer than N nodes, so the budget is N plus this.
MAX_ALIAS_NODES = 100_000
#: Largest single watch event (one JSON line) from a Kubernetes API server ($MESHSCOPE_MAX_EVENT_BYTES).
MAX_EVENT_BYTES = 16 * 1024 * 1024

OVER_LIMIT = "over-limit"  # LoadProblem.reason for every limit here (finding MS0040)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if value > 0 else default


def max_input_bytes() -> int:
    return _env_int("MESHSCOPE_MAX_INPUT_BYTES", MAX_INPUT_BYTES)


def max_depth() -> int:
    return _env_int("MESHSCOPE_MAX_DEPTH", MAX_DEPTH)


def max_event_bytes() -> int:
    return _env_int("MESHSCOPE_MAX_EVENT_BYTES", MAX_EVENT_BYTES)


def node_budget(text_length: int) -> int:
    """How many nodes building a stream of `text_length` characters may produce."""
    return text_length + _env_int("MESHSCOPE_MAX_ALIAS_NODES", MAX_ALIAS_NODES)


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


class InputLimitError(ValueError):
    """An input over one of the limits; `line` is 1-based (0 when the whole input is meant)."""

    reason = OVER_LIMIT

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


def size_problem(size: int, what: str = "input") -> str | None:
    """The message for an input of `size` bytes over the limit, or None when it is within."""
    limit = max_input_bytes()
    if size <= limit:
        return None
    return (f"{what} is {human_bytes(size)}, over the {human_bytes(limit)} input limit "
            "(raise it with MESHSCOPE_MAX_INPUT_BYTES if this file is trusted)")


def expansion_message(budget: int) -> str:
    return (f"YAML aliases expand this document beyond {budget} nodes (an alias bomb?); refused without "
            "expanding it (raise MESHSCOPE_MAX_ALIAS_NODES if this file is trusted)")


def depth_message(limit: int) -> str:
    return (f"document nests deeper than {limit} levels; refused "
            "(raise MESHSCOPE_MAX_DEPTH if this file is trusted)")


def loads_json(data: bytes | str, what: str, limit: int | None = None) -> Any:
    """`json.loads` within the size limit and the interpreter's nesting limit; InputLimitError/ValueError otherwise."""
    limit = max_input_bytes() if limit is None else limit
    if len(data) > limit:
        raise InputLimitError(f"{what} is {human_bytes(len(data))}, over the {human_bytes(limit)} limit")
    try:
        return json.loads(data)
    except RecursionError:
        raise InputLimitError(f"{what} nests too deeply to decode") from None
