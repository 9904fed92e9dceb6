"""Helpers every bench uses, so output lines stay uniform: `bench NAME: VALUE UNIT (RATIOx vs BASELINE)`."""
from __future__ import annotations

import time
from collections.abc import Callable


def report(name: str, value: float, unit: str, baseline: tuple[str, float] | None = None) -> None:
    """Print one figure; `baseline` is (name, value in the same unit) measured in the same run."""
    line = f"bench {name}: {value:,.3f} {unit}" if value < 100 else f"bench {name}: {value:,.0f} {unit}"
    if baseline and baseline[1]:
        line += f" ({value / baseline[1]:.1f}x vs {baseline[0]})"
    print(line, flush=True)


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time in seconds over `repeat` runs (least disturbed by the other core's work)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
