"""The ingest policy every push receiver shares: admit a bounded amount of work, shed the rest, sample traces.

Why: a receiver that accepts whatever arrives turns a burst into unbounded threads, memory and
lock waits, and a sender that is never told "later" keeps pushing. Here each receiver asks
`Admission.enter(nbytes)` before decoding; past `max_pending` batches or `max_pending_bytes`
bytes it is refused and the receiver answers the way OpenTelemetry exporters understand (HTTP 503
with `Retry-After`, gRPC UNAVAILABLE), so the sender backs off and retries instead of losing data.

Traces may be sampled on ingest (`TraceSampler`, ratio 0..1): whole traces are kept or dropped,
decided by a hash of the trace id, so the spans of one trace that different sidecars export are
kept together, and the choice is the same in every process and after restarts.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from collector import schema as s


class Overloaded(Exception):
    """Refused: the receiver is at its bound. `retry_after_s` tells the sender when to come back."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Admission:
    """Counts batches and bytes in flight (received, not yet stored); refuses past the bounds."""

    def __init__(self, max_pending: int = 16, max_pending_bytes: int = 64 * 2**20, retry_after_s: int = 2) -> None:
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self.retry_after_s = retry_after_s
        self._lock = threading.Lock()
        self.pending = 0
        self.pending_bytes = 0
        self.shed = 0  # batches refused so far

    def enter(self, nbytes: int) -> None:
        with self._lock:
            # one batch is always admitted when nothing is pending, however large (the body limit bounds it)
            if self.pending and (self.pending >= self.max_pending or self.pending_bytes + nbytes > self.max_pending_bytes):
                self.shed += 1
                raise Overloaded(f"ingest is behind ({self.pending} batches, {self.pending_bytes} bytes pending); "
                                 f"retry in {self.retry_after_s}s", self.retry_after_s)
            self.pending += 1
            self.pending_bytes += nbytes

    def leave(self, nbytes: int) -> None:
        with self._lock:
            self.pending -= 1
            self.pending_bytes -= nbytes

    def reserve(self, nbytes: int) -> None:
        """Count `nbytes` of a body still being received against the byte bound (not a batch yet).

        Why: a body is held in memory while it arrives; counted only once whole, hundreds of connections
        could each hold a body of the size limit before the bound applied. When nothing else is held,
        one body is always allowed (the body limit bounds it)."""
        with self._lock:
            if self.pending_bytes and self.pending_bytes + nbytes > self.max_pending_bytes:
                self.shed += 1
                raise Overloaded(f"ingest is behind ({self.pending} batches, {self.pending_bytes} bytes pending or "
                                 f"arriving); retry in {self.retry_after_s}s", self.retry_after_s)
            self.pending_bytes += nbytes

    def release(self, nbytes: int) -> None:
        with self._lock:
            self.pending_bytes -= nbytes


@dataclass
class TraceSampler:
    """Keep a `ratio` (0..1) of traces, all spans of a kept trace; 1 keeps everything."""

    ratio: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.ratio <= 1.0:
            raise ValueError(f"trace sample ratio must be between 0 and 1, got {self.ratio}")

    def keep(self, spans: pa.Table) -> pa.Table:
        """The rows of `spans` whose trace is sampled in (vectorized: one hash per row)."""
        if self.ratio >= 1.0 or spans.num_rows == 0:
            return spans
        if self.ratio <= 0.0:
            return spans.slice(0, 0)
        ids = spans.column(s.TRACE_ID).to_numpy(zero_copy_only=False)
        buckets = pd.util.hash_array(ids.astype(object), categorize=False) % 1_000_000
        return spans.filter(pa.array(buckets < int(self.ratio * 1_000_000)))

