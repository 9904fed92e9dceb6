"""Trace exports decoded and stored together: the trace receivers' batch processor.

Why: a sidecar exports a few dozen spans every few seconds, and what a batch costs is mostly per
call (the vectorized decoder walks once per field position however many spans there are; the
store writes one write-ahead record and one chunk per call). With seven sidecars at 5 requests/s
that fixed cost was most of meshscope's trace-ingest CPU. So the receiver hands protobuf bodies
to one worker that takes every body already waiting (up to `max_batch_bytes` / `max_batch_bodies`:
a large export already amortizes the fixed cost), decodes them with `decode_traces_many` and
stores them as one chunk. Each sender still gets its own answer: its body's refused spans, or 400
when only its body is undecodable. The store has the spans before any sender is answered, so an
answered export is durable exactly as before.

No linger by default (issue #18): a batch is what queued while the previous one was decoded, so
a lone sender (an exporter with one worker, sending one export at a time) is answered as soon as
its body is decoded, never held for neighbours that are not coming; under load, bodies that
arrive while the worker is busy are exactly the ones batched. `linger_s` > 0 still waits that long
after the first body for more (a knob for tests and for senders known to be many).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import pyarrow as pa

from collector import selfmetrics
from collector.parse.otlp import OtlpDecodeError, OtlpResult, decode_traces_many
from collector.store import TelemetryStore

log = logging.getLogger(__name__)


@dataclass
class Stored:
    """One body's outcome: its decode result (rows, refused spans) and the rows kept after sampling."""

    result: OtlpResult
    kept: int


class TraceBatcher:
    """One worker thread that decodes queued trace bodies together and stores them as one chunk."""

    def __init__(self, store: TelemetryStore, *, linger_s: float = 0.0, max_batch_bytes: int = 256 * 2**10,
                 max_batch_bodies: int = 64, keep: Callable[[pa.Table], pa.Table] | None = None) -> None:
        self.store = store
        self.linger_s = linger_s
        self.max_batch_bytes = max_batch_bytes
        self.max_batch_bodies = max_batch_bodies
        self.keep = keep or (lambda t: t)  # trace sampling, applied to the joint table
        self.batches = 0  # decode+store rounds so far
        self.bodies = 0
        self._queue: queue.SimpleQueue[tuple[bytes, Future] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, body: bytes) -> Future:
        """Queue a protobuf ExportTraceServiceRequest; the future gives `Stored`, or raises
        OtlpDecodeError (this body is undecodable) or the store's error."""
        fut: Future = Future()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="otlp-trace-batch", daemon=True)
                self._thread.start()
        self._queue.put((body, fut))
        return fut

    def stop(self) -> None:
        """Finish what is queued, then end the worker."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, size, done = [first], len(first[0]), False
            deadline = time.monotonic() + self.linger_s
            while size < self.max_batch_bytes and len(batch) < self.max_batch_bodies:
                wait = deadline - time.monotonic()
                try:  # without a linger: only what is already waiting, never a wait for more
                    item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    done = True
                    break
                batch.append(item)
                size += len(item[0])
            self._process(batch)
            if done:
                return

    @selfmetrics.counts_cpu("otlp")
    def _process(self, batch: list[tuple[bytes, Future]]) -> None:
        live = [(body, fut) for body, fut in batch if fut.set_running_or_notify_cancel()]
        if not live:
            return
        self.batches += 1
        self.bodies += len(live)
        try:
            decoded = decode_traces_many([body for body, _ in live])
            kept = self.keep(decoded.table)
            self.store.add_spans(kept)
        except BaseException as exc:  # noqa: BLE001 - every waiting sender hears of it
            for _, fut in live:
                fut.set_exception(exc)
            return
        sampled = kept.num_rows < decoded.table.num_rows
        for (_, fut), res in zip(live, decoded.results):
            if isinstance(res, OtlpDecodeError):
                fut.set_exception(res)
            else:
                n = res.table.num_rows
                if sampled and n:  # per body: rows of its traces that sampling kept
                    n = self.keep(res.table).num_rows
                fut.set_result(Stored(res, n))
