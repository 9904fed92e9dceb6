"""A steady request stream through the ingress gateway, like Bookinfo's demo load.

Ticks are scheduled at a fixed rate (not "as fast as responses come back"), so a
slow or failing backend does not change the offered load. Each tick sends
`concurrency` requests in parallel on a small pool of keep-alive connections; when
every worker is busy the tick is counted as skipped instead of queueing forever.
"""
from __future__ import annotations

import http.client
import queue
import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class TrafficStats:
    sent: int = 0
    skipped: int = 0
    errors: int = 0  # connection-level failures (no HTTP status)
    codes: Counter = field(default_factory=Counter)


class TrafficGenerator:
    def __init__(self, host: str, port: int, rate: float = 5.0, paths: tuple[str, ...] = ("/productpage",),
                 concurrency: int = 1, workers: int = 8, headers: dict[str, str] | None = None):
        self.host, self.port = host, port
        self.rate = rate
        self.paths = paths
        self.concurrency = concurrency
        self.headers = dict(headers or {})
        self.stats = TrafficStats()
        self._lock = threading.Lock()
        self._work: queue.Queue = queue.Queue(maxsize=workers)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._worker, name=f"traffic-{i}", daemon=True) for i in range(workers)]
        self._ticker = threading.Thread(target=self._tick, name="traffic-ticker", daemon=True)

    def start(self) -> None:
        for t in self._threads:
            t.start()
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        deadline = time.monotonic() + 3.0  # a request stuck on a slow upstream must not hold up shutdown
        for t in [self._ticker, *self._threads]:  # workers poll the stop flag between requests
            t.join(timeout=max(0.0, deadline - time.monotonic()))

    def set_rate(self, rate: float, concurrency: int | None = None) -> None:
        self.rate = max(0.0, rate)
        if concurrency is not None:
            self.concurrency = max(1, concurrency)

    def snapshot(self) -> dict:
        with self._lock:
            # `at`: when these counts were read (epoch s), so a caller can match them to other records' times
            return {"sent": self.stats.sent, "skipped": self.stats.skipped, "errors": self.stats.errors,
                    "codes": dict(self.stats.codes), "rate": self.rate, "at": time.time()}

    # --- threads ---------------------------------------------------------------------------
    def _tick(self) -> None:
        next_at = time.monotonic()
        i = 0
        while not self._stop.is_set():
            if self.rate <= 0:
                self._stop.wait(0.2)
                next_at = time.monotonic()
                continue
            next_at += 1.0 / self.rate
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            elif delay < -1.0:
                next_at = time.monotonic()  # fell far behind (machine busy): do not burst to catch up
            for _ in range(self.concurrency):
                path = self.paths[i % len(self.paths)]
                i += 1
                try:
                    self._work.put_nowait(path)
                except queue.Full:
                    with self._lock:
                        self.stats.skipped += 1

    def _worker(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            try:
                path = self._work.get(timeout=0.2)
            except queue.Empty:
                continue
            headers = {"x-request-id": str(uuid.uuid4()), "user-agent": "meshscope-traffic/1.0", **self.headers}
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                    conn.connect()
                    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                with self._lock:
                    self.stats.sent += 1
                    self.stats.codes[resp.status] += 1
                if (resp.getheader("connection") or "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                with self._lock:
                    self.stats.sent += 1
                    self.stats.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()
