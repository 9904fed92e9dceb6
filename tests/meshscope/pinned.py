"""A live source whose clock the test sets, so "now" (graph cache ages, series end times) is reproducible."""
from __future__ import annotations

from meshscope.live_source import LiveSource


# A past instant's numbers are final once every target has been scraped after it (a past window is closed by each
# target's next scrape, collector/query.py): 1 s scrapes, so 5 s back leaves room for a late scrape round.
SETTLED_S = 5.0


class PinnedSource(LiveSource):
    def __init__(self, stack, at: float):
        super().__init__(stack)
        self.at = at

    def now(self) -> float:
        return self.at
