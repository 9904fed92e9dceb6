"""Untrusted text made safe for a terminal or a CI log: control characters shown, never obeyed.

Findings quote what the analysed files say (hosts, names, paths), and `meshscope analyze` runs
on pull requests' YAML in CI. A YAML string may hold any character (`"\\e[2J"`, `"\\n::error
file=x::"`): printed raw, ANSI escapes repaint or hide lines of the terminal, a newline starts a
forged line (a CI runner's workflow command), bidi overrides reorder what the reader sees.
Each such character is written as a visible escape instead (`\\x1b`, `\\n`, `\\u202e`).
"""
from __future__ import annotations

import logging
import re

# C0 and C1 controls, DEL, Unicode line/paragraph separators and the bidi embedding/override/isolate marks
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _shown(m: re.Match[str]) -> str:
    ch = m.group(0)
    if ch in _NAMED:
        return _NAMED[ch]
    return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"


def terminal_safe(text: str) -> str:
    """`text` with every control character written as a visible escape (printable text unchanged)."""
    return _UNSAFE.sub(_shown, text)


class SafeFormatter(logging.Formatter):
    """A log formatter whose message part shows control characters as escapes: a logged value (a target's
    error text, an API server's answer) cannot add a forged line or repaint the terminal. A traceback, added
    after the message, keeps its own lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = terminal_safe(record.message)
        return super().formatMessage(record)
