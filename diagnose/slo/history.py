"""Per-SLO event counts over time, so windows longer than the telemetry store keeps can be evaluated.

The collector's store holds minutes of raw telemetry; an SLO needs error ratios
over hours and days (and its whole period for the remaining budget). Each SLO
therefore keeps (total, bad) counts in fixed time buckets in a numpy ring: a
few MB for a 30-day period at a 30 s resolution, updated and queried with
vectorized operations. Windows with less history than their length use what
there is, as Prometheus' rate() does.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

MAX_BUCKETS = 100_000


class SliHistory:
    """(total, bad) event counts in `resolution_s` buckets covering `span_s` (the SLO period)."""

    def __init__(self, span_s: float, resolution_s: float) -> None:
        n = int(np.ceil(span_s / resolution_s))
        if n > MAX_BUCKETS:  # keep memory bounded: coarser buckets for very long periods
            resolution_s = span_s / MAX_BUCKETS
            n = MAX_BUCKETS
        self.resolution_s = float(resolution_s)
        self.n = max(n, 1)
        self.ids = np.full(self.n, -1, dtype=np.int64)  # which absolute bucket each slot holds
        self.total = np.zeros(self.n)
        self.bad = np.zeros(self.n)
        self.first_t: float | None = None
        self.last_t: float | None = None

    def add(self, times: np.ndarray, total: np.ndarray, bad: np.ndarray) -> None:
        """Add counts observed at `times` (epoch seconds); counts older than the span are dropped."""
        times = np.asarray(times, dtype=float)
        if times.size == 0:
            return
        total = np.broadcast_to(np.asarray(total, dtype=float), times.shape)
        bad = np.broadcast_to(np.asarray(bad, dtype=float), times.shape)
        b = np.floor(times / self.resolution_s).astype(np.int64)
        newest = max(int(b.max()), int(self.ids.max()))
        keep = b > newest - self.n
        b, total, bad = b[keep], total[keep], bad[keep]
        if b.size == 0:
            return
        ub = np.unique(b)
        slots = ub % self.n
        stale = self.ids[slots] != ub
        self.total[slots[stale]] = 0.0
        self.bad[slots[stale]] = 0.0
        self.ids[slots] = ub
        np.add.at(self.total, b % self.n, total)
        np.add.at(self.bad, b % self.n, bad)
        t_min, t_max = float(times[keep].min()), float(times[keep].max())
        self.first_t = t_min if self.first_t is None else min(self.first_t, t_min)
        self.last_t = t_max if self.last_t is None else max(self.last_t, t_max)

    def counts(self, window_s: float, now: float) -> tuple[float, float]:
        """(total, bad) over (now - window, now]."""
        bnow = int(np.floor(now / self.resolution_s))
        k = min(max(int(np.ceil(window_s / self.resolution_s)), 1), self.n)  # never beyond the span kept
        valid = (self.ids > bnow - k) & (self.ids <= bnow)
        return float(self.total[valid].sum()), float(self.bad[valid].sum())

    def ratio(self, window_s: float, now: float) -> tuple[float, float]:
        """(error ratio, total events) over the window; ratio 0 when there were no events."""
        total, bad = self.counts(window_s, now)
        return (bad / total if total > 0 else 0.0), total

    def series(self, now: float, points: int = 60) -> list[tuple[float, float, float]]:
        """Cumulative (time, total, bad) at up to `points` instants over the history, for budget charts."""
        bnow = int(np.floor(now / self.resolution_s))
        # the ring in time order without a sort: bucket b sits in slot b % n, so the buckets of (now - span, now]
        # run from slot (bnow + 1) % n round to slot bnow % n (an argsort of the 86,400 slots of a 30-day SLO
        # cost ~8 ms per SLO per live cycle, most of a cycle's SLO work; issue #18, idle is idle)
        order = np.roll(np.arange(self.n), -((bnow + 1) % self.n))
        ids = self.ids[order]
        mask = (ids > bnow - self.n) & (ids <= bnow) & (ids >= 0)
        if not mask.any():
            return []
        ids, tot, bad = ids[mask], np.cumsum(self.total[order][mask]), np.cumsum(self.bad[order][mask])
        pick = np.unique(np.linspace(0, len(ids) - 1, min(points, len(ids))).astype(int))
        return [(float((ids[i] + 1) * self.resolution_s), float(tot[i]), float(bad[i])) for i in pick]

    # -- persistence (the data dir keeps budgets across restarts) --------------------------------------
    def save(self, path: str | Path, **meta: str) -> None:
        """Write the ring atomically (a crash mid-write leaves the previous file)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, ids=self.ids, total=self.total, bad=self.bad, resolution_s=self.resolution_s,
                     first_t=np.nan if self.first_t is None else self.first_t,
                     last_t=np.nan if self.last_t is None else self.last_t,
                     **{f"meta_{k}": np.array(v) for k, v in meta.items()})
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path, span_s: float, resolution_s: float) -> tuple["SliHistory", dict[str, str]]:
        """A ring saved by `save` (ValueError when it does not fit this span/resolution or is damaged)."""
        h = cls(span_s, resolution_s)
        try:
            with np.load(Path(path), allow_pickle=False) as z:
                if z["ids"].shape != h.ids.shape or not np.isclose(float(z["resolution_s"]), h.resolution_s):
                    raise ValueError(f"{path}: saved for another period or resolution")
                h.ids, h.total, h.bad = z["ids"].astype(np.int64), z["total"].astype(float), z["bad"].astype(float)
                first, last = float(z["first_t"]), float(z["last_t"])
                meta = {k[5:]: str(z[k]) for k in z.files if k.startswith("meta_")}
        except (OSError, KeyError, EOFError) as exc:
            raise ValueError(f"{path}: unreadable SLO history ({exc})") from exc
        h.first_t = None if np.isnan(first) else first
        h.last_t = None if np.isnan(last) else last
        return h, meta
