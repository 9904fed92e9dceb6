"""Durations as Istio reads them: Go's time.ParseDuration syntax ("1h2m3.5s", "250ms").

Istio's CRDs check durations with CEL's duration(), which uses Go's parser; so a
bare number ("5"), a space, or an unknown unit ("5sec") is refused.
"""
from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_MAX_SECONDS = (2**63 - 1) / 1e9  # Go's time.Duration is int64 nanoseconds
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


class DurationError(ValueError):
    pass


def parse_duration(text: str) -> float:
    """Seconds in `text`; DurationError says why it is not a duration."""
    s = text
    sign = 1.0
    if s[:1] in "+-" and s:
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise DurationError(f"invalid duration {text!r}")
    pos, total = 0, 0.0
    while pos < len(s):
        m = _PART.match(s, pos)
        if not m:
            hint = " (missing unit: write e.g. 5s or 250ms)" if re.fullmatch(r"[\d.]+", s[pos:]) else ""
            raise DurationError(f"invalid duration {text!r}{hint}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if total > _MAX_SECONDS:
        raise DurationError(f"invalid duration {text!r} (out of range: at most about 292 years)")
    return sign * total
