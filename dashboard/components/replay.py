"""Replay a window on the graph (issue #14): a slider steps through it, the config changes marked on it.

Step i of STEPS shows the graph of one slice of the window (its length over
STEPS, at least MIN_SLICE_S so a slice holds a few scrapes) ending i slices into
the window; the last step is the whole window as usual. A slice in which the
config changed carries a mark naming how many changes, so stepping across it
shows what the change did to the traffic.
"""
from __future__ import annotations

from typing import Any

from dashboard.components.change_marks import window_changes

STEPS = 10
MIN_SLICE_S = 10.0


def slice_s(window_s: float) -> float:
    return max(float(window_s) / STEPS, MIN_SLICE_S)


def view(window: float | None, end_ago: float | None, step: int | None) -> tuple[float | None, float | None]:
    """(window, end_ago) to draw at a slider step; the last step (or none) is the window itself."""
    if step is None or step >= STEPS or step < 0:
        return window, end_ago
    w = float(window or 300)
    return slice_s(w), float(end_ago or 0) + (STEPS - 1 - step) * w / STEPS


def marks(source: Any, window: float | None, end_ago: float | None) -> dict[str, Any]:
    """Slider marks: each step's time offset; a step whose slice holds config changes says how many."""
    w = float(window or 300)
    end = source.now() - float(end_ago or 0)
    start = end - w
    changes = [c for c in window_changes(source, start, end) if c.get("op") != "gap"]
    out: dict[str, Any] = {}
    for step in range(STEPS + 1):
        if step == STEPS:
            out[str(step)] = {"label": "all"}
            continue
        step_end = start + (step + 1) * w / STEPS
        n = sum(1 for c in changes if step_end - w / STEPS < float(c["time"]) <= step_end)
        label = f"-{(STEPS - 1 - step) * w / STEPS:.0f}s" if step % 3 == 0 or n else ""
        if n:
            out[str(step)] = {"label": f"\u25b2{n} {label}".strip(), "style": {"color": "#7c3aed", "fontWeight": "bold"}}
        elif label:
            out[str(step)] = {"label": label}
    return out
