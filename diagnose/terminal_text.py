"""Untrusted text made safe for a terminal or a CI log: control characters shown, never obeyed.

Findings quote what the analysed files say (hosts, names, paths), and `meshscope analyze` runs
on pull requests' YAML in CI. A YAML string may hold any character (`"\\e[2J"`, `"\\n::error
file=x::"`): printed raw, ANSI escapes repaint or hide lines of the terminal, a newline starts a
forged line (a CI runner's workflow command), bidi overrides reorder what the reader sees.
Each such character is written as a visible escape instead (`\\x1b`, `\\n`, `\\u202e`).

Every place meshscope writes untrusted text for a person (the CLI's lines, its log lines, alert
bodies, text reports) goes through `terminal_safe` (or `json_safe` inside JSON strings).
"""
from __future__ import annotations

import logging
import re
import sys
import traceback
from typing import Any

# C0 and C1 controls, DEL, Unicode line/paragraph separators, the bidi marks (embedding, override, isolate, LRM/RLM,
# the Arabic letter mark) and the invisible zero-width space and BOM (a name that looks like another)
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_UNSAFE_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u061c\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
# what json.dumps(ensure_ascii=False) leaves raw in strings (it escapes C0 itself; a C0 outside strings is layout)
_RAW_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u061c\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _shown(m: re.Match[str]) -> str:
    ch = m.group(0)
    if ch in _NAMED:
        return _NAMED[ch]
    return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"


def terminal_safe(text: Any, keep_newlines: bool = False) -> str:
    """`text` (any value, as str) with every control character written as a visible escape (printable text
    unchanged). `keep_newlines` keeps line breaks, for text whose lines are its structure (a YAML document)."""
    text = text if isinstance(text, str) else str(text)
    return (_UNSAFE_BUT_NEWLINE if keep_newlines else _UNSAFE).sub(_shown, text)


def json_safe(text: str) -> str:
    """JSON text with the characters `json.dumps` leaves raw (C1 controls, bidi marks, U+2028) as `\\uXXXX`
    escapes: the same data, but printing it cannot drive a terminal. Only valid on JSON (they only occur in
    its strings, where `\\uXXXX` means the same character)."""
    return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def say(text: Any, file: Any = None, flush: bool = True) -> None:
    """Print one line of untrusted text (a message built from names, an error from a server) safely."""
    print(terminal_safe(text), file=file or sys.stdout, flush=flush)


_TRUSTED_CHUNK = ("Traceback (most recent call last):", "  File ", "\nThe above exception", "\nDuring handling")


class SafeFormatter(logging.Formatter):
    """A log formatter whose message part shows control characters as escapes: a logged value (a target's
    error text, an API server's answer) cannot add a forged line or repaint the terminal. A traceback keeps
    its own lines (frames quote meshscope's source), but each exception's message is escaped like the rest."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = terminal_safe(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        parts = []
        for chunk in traceback.TracebackException(*ei[:3]).format():
            if chunk.startswith(_TRUSTED_CHUNK):
                parts.append(chunk)
            else:  # "Type: message" (or a note): the message may be anything an input said
                parts.append(terminal_safe(chunk[:-1] if chunk.endswith("\n") else chunk) + "\n")
        return "".join(parts).rstrip("\n")


def safe_log_handler(fmt: str = "  [%(asctime)s] %(levelname)s %(name)s: %(message)s") -> logging.Handler:
    """A stderr handler with `SafeFormatter`: what the CLI commands log through (meshscope up, serve)."""
    handler = logging.StreamHandler()
    handler.setFormatter(SafeFormatter(fmt, "%H:%M:%S"))
    return handler
