"""A live source whose clock the test sets, and a frozen copy of the live store, so two views read one instant.

Comparing two views of the shared stack at one past instant needs numbers that cannot move between
the reads. Two things move them: a past window is closed by each target's first scrape after its end
(collector/query.py), which a loaded box may deliver late; and the stack's store evicts its oldest
rows once it passes its memory budget (at 1 s scrapes of the shared mesh, 128 MiB holds about two and
a half minutes of metrics), so a window's baseline scrapes can vanish while a slow box is still reading
(measured in session 6: the same instant read 1.3 % and then 20 % apart, 100 % once both edges had gone).
`settled` waits until every target has been scraped after the instant, copies the rows that instant's
windows read into a store of the test's own, and answers from that copy: the product's code on the
mesh's real telemetry, read as often as the test likes.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from meshscope.live_source import LiveSource

# How long the wait for the scrapes that close an instant may take on a loaded box (1 s scrapes).
SETTLE_TIMEOUT_S = 60.0
# the views' window; a copy holds what a window ending at the instant reads (its baseline lookback included)
WINDOW = 60.0


class PinnedSource(LiveSource):
    def __init__(self, stack, at: float):
        super().__init__(stack)
        self.at = at

    def now(self) -> float:
        return self.at


class FrozenBackend:
    """The bundled backend's rate and config answers over a store the test owns (nothing is added to it)."""

    name = "frozen copy of the bundled mesh"

    def __init__(self, store: Any, snapshot: Any):
        self.store = store
        self._snapshot = snapshot
        self._rates: dict[tuple[float, float | None], pd.DataFrame] = {}
        self.reads = 0  # rate frames computed from the copy (the rest were answered from `_rates`)

    def snapshot(self) -> Any:
        return self._snapshot

    def data_version(self) -> tuple:
        return (self.store.generation("metrics"),)

    def rates(self, window_s: float, end: float | None = None) -> pd.DataFrame:
        """The product's rate frame over the copy; one (window, end) is computed once (nothing is ever added to
        the copy, so the answer cannot change) and each caller gets its own deep copy of it.

        The views compared ask for the same few frames over and over (every graph type the frame at the
        instant, every series and Service page the same points): each read of the copy took 1-1.5 s late in
        a loaded run, most of the series-vs-graph tests' time."""
        from collector.query import istio_rates

        key = (float(window_s), None if end is None else float(end))
        if end is None or key not in self._rates:  # "now" is not an instant of the copy: never remembered
            frame = istio_rates(self.store, window_s, end)
            self.reads += 1
            if end is None:
                return frame
            self._rates[key] = frame
        return self._rates[key].copy(deep=True)


@dataclass
class Settled:
    """A frozen copy of the shared stack's metrics around `at`, every target's window closed."""

    at: float
    store: Any
    backend: FrozenBackend
    stack: Any  # stands in for the live stack (its diagnoser: latency SLOs colour the graph, canary marks)

    def source(self) -> PinnedSource:
        """A fresh source (empty graph cache) pinned at the copy's instant."""
        return PinnedSource(self.stack, at=self.at)


def _scrapes(store: Any, start: float) -> dict[str, np.ndarray]:
    """Per target: its scrape times since `start` (epoch s, sorted, distinct), in one pass over the rows (a row per
    series and scrape: late in a run a per-target scan of them took most of a poll)."""
    from collector import schema as s

    m = store.arrow("metrics", start, None, columns=[s.TIME, s.TARGET])
    if not m.num_rows:
        return {}
    pairs = pa.table({"target": m.column(s.TARGET).cast(pa.string()), "t": m.column(s.TIME).cast(pa.int64())})
    pairs = pairs.group_by(["target", "t"]).aggregate([]).sort_by([("target", "ascending"), ("t", "ascending")])
    target = pairs.column("target").to_numpy(zero_copy_only=False)
    t = pairs.column("t").to_numpy() / 1e9
    cuts = np.flatnonzero(target[1:] != target[:-1]) + 1
    return {str(part[0]): times for part, times in zip(np.split(target, cuts), np.split(t, cuts))}


def _closed(scrapes: dict[str, np.ndarray], at: float, window_s: float) -> bool:
    """Every target scraped around `at` has a scrape after it and one before the window (its baseline)."""
    recent = [t for t in scrapes.values() if len(t) and t[-1] > at - 10]  # scraped around the instant
    return bool(recent) and all(t[-1] > at and t[0] <= at - window_s for t in recent)


def _copy_when_closed(stack: Any, at: float, window_s: float) -> Settled | None:
    """The copy around `at`, or None while a target lacks its scrape after `at` (or its baseline before the window)."""
    from collector.query import BASELINE_LOOKBACK_S
    from collector.store import TelemetryStore

    lookback = min(window_s, BASELINE_LOOKBACK_S)
    start = at - window_s - lookback
    live = stack.backend.store
    if not _closed(_scrapes(live, start), at, window_s):  # not yet: no copy (a copy per poll cost ~1 s late in a run)
        return None
    store = TelemetryStore(window_s=10 * 86400.0, max_bytes=2**40)  # memory only, never evicts the copy
    store.add_samples(live.arrow("metrics", start, None))
    # judged again on the copy itself, so nothing can leave between the check and the reads
    if not _closed(_scrapes(store, start), at, window_s):
        return None
    backend = FrozenBackend(store, stack.backend.snapshot())
    return Settled(at, store, backend, SimpleNamespace(backend=backend, diagnoser=getattr(stack, "diagnoser", None)))


def settle(stack: Any, window_s: float = WINDOW, timeout: float = SETTLE_TIMEOUT_S) -> Settled:
    """Pin `now`, wait (polled, with a deadline) until every target's next scrape closed it, and copy the store."""
    from tests.util import wait_until

    at = time.time()

    def copied() -> Settled | None:
        nonlocal at
        out = _copy_when_closed(stack, at, window_s)
        if out is None and time.time() - at > 20:  # a baseline evicted meanwhile: pin a newer instant
            at = time.time()
        return out

    return wait_until(copied, timeout=timeout, interval=0.5, what="every target scraped after the pinned instant")


def _failed_since(store: Any, since: float) -> bool:
    """Whether the access logs hold a request that failed (no 2xx/3xx answer) since `since` (epoch s)."""
    import pyarrow.compute as pc

    from collector import schema as s

    codes = store.arrow("requests", since, None, columns=[s.RESPONSE_CODE]).column(s.RESPONSE_CODE).cast(pa.string())
    return bool(len(codes)) and not pc.all(pc.match_substring_regex(codes, "^[23]")).as_py()


@functools.cache
def settled_with_errors(stack: Any) -> Settled:
    """One frozen copy per session of the shared stack while `fault-abort` makes errors of every kind the views
    count (a client-side 503 that never reached a workload, beside healthy traffic), for every test that compares
    two views at one instant. The baseline is back before it returns."""
    from tests.util import wait_until

    mesh = stack.backend.mesh
    applied = time.time()
    mesh.apply_scenario("fault-abort")
    try:
        # the instant is pinned once failures are in: a window ending at the apply holds none of them (its copy,
        # settled and laid out for nothing, was most of this wait late in a run)
        wait_until(lambda: _failed_since(stack.backend.store, applied), timeout=SETTLE_TIMEOUT_S, interval=0.2,
                   what="fault-abort's failed requests in the access logs")

        def with_errors() -> Settled | None:
            copy = settle(stack)
            return copy if any(d["error_pct"] > 0 for d in copy.source().services()) else None

        return wait_until(with_errors, timeout=3 * SETTLE_TIMEOUT_S, interval=0.5, what="errors in a settled copy")
    finally:
        mesh.reset()
