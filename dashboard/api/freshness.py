"""How old an answer is: the live views answer from the latest computed state, never a computation on the request's
time (issue #18), so every such answer says when that state was computed.

`X-Meshscope-As-Of` is the epoch second the answer describes (the graph's build time, the diagnoser's latest
cycle); `Age` (RFC 9111: whole seconds since then) lets generic HTTP clients and proxies read the same thing.
A source that cannot say (a saved snapshot, a diagnoser that has not run yet) sends neither.
"""
from __future__ import annotations

import math
import time
from typing import Any

from flask import Response

from dashboard.api.common import json_response


def stamped(payload: Any, as_of: float | None, now: float | None = None) -> Response:
    """The JSON answer with its as-of time and age in headers (and `age_s` in a dict payload)."""
    if as_of is None or not math.isfinite(as_of):
        return json_response(payload)
    age = max(0.0, (time.time() if now is None else now) - as_of)
    if isinstance(payload, dict):
        payload = {**payload, "age_s": round(age, 3)}
    out = json_response(payload)
    out.headers["X-Meshscope-As-Of"] = f"{as_of:.3f}"
    out.headers["Age"] = str(int(age))
    return out


def is_live(source: Any) -> bool:
    """A source over running parts (its answers age), not a saved snapshot."""
    return callable(getattr(source, "state_as_of", None))


def state_as_of(source: Any) -> float | None:
    """When the diagnoser state (findings, SLOs) the source serves was computed, if the source knows."""
    fn = getattr(source, "state_as_of", None)
    try:
        return fn() if callable(fn) else None
    except Exception:  # noqa: BLE001 - a freshness stamp is information, never a reason to fail the answer
        return None
