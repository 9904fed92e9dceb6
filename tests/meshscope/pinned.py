"""A live source whose clock the test sets, so "now" (graph cache ages, series end times) is reproducible."""
from __future__ import annotations

from meshscope.live_source import LiveSource


class PinnedSource(LiveSource):
    def __init__(self, stack, at: float):
        super().__init__(stack)
        self.at = at

    def now(self) -> float:
        return self.at
