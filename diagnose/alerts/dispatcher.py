"""Findings in, notifications out: the glue between the grouper, the outbox and the sinks.

`process(findings, now)` is called by the live loop with everything open now;
it diffs against what receivers were told, persists any notification due, and
wakes the senders. A background thread flushes groups whose wait has elapsed
and one sender thread per receiver drains the outbox, so a hanging receiver
only delays itself.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import httpx

from diagnose.alerts import alertmanager, amwebhook, selfmetrics, slack, webhook
from diagnose.alerts.config import AlertsConfig, LoadedAlertsConfig, ReceiverConfig, load_alerts_config
from diagnose.alerts.delivery import DELIVERED, FAILED, Attempt, backoff, send
from diagnose.alerts.grouping import Grouper, incident_alerts
from diagnose.alerts.model import Alert, Notification
from diagnose.alerts.outbox import DELIVERED as ST_DELIVERED
from diagnose.alerts.outbox import EXPIRED, PENDING, Outbox
from diagnose.alerts.outbox import FAILED as ST_FAILED
from diagnose.findings import Finding

log = logging.getLogger("meshscope.alerts")

SINKS: dict[str, ModuleType] = {"webhook": webhook, "slack": slack, "alertmanager": alertmanager, "amwebhook": amwebhook}
OUTBOX_FILE = "alerts-outbox.sqlite"
KEEP_FINISHED_S = 7 * 86400  # delivered/failed notifications stay inspectable this long


class AlertDispatcher:
    """Durable, grouped, retried alert delivery for one meshscope process.

    `clock` and the backoff settings are parameters so tests drive time
    explicitly; in production the defaults are wall-clock and 1 s doubling to 5 min.
    """

    def __init__(
        self,
        config: AlertsConfig,
        data_dir: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        tick_s: float = 0.5,
    ):
        self.config = config
        self.receivers = {r.name: r for r in config.receivers}
        self.clock = clock
        self.backoff_base, self.backoff_cap, self.tick_s = backoff_base, backoff_cap, tick_s
        self.outbox = Outbox(Path(data_dir) / OUTBOX_FILE)
        self.grouper = Grouper(config.receivers)
        self.grouper.load(self.outbox.load_state())
        self._lock = threading.RLock()
        self._client = httpx.Client(http2=False, follow_redirects=False)
        self._stop = threading.Event()
        self._wake = {name: threading.Event() for name in self.receivers}
        self._threads: list[threading.Thread] = []

    @classmethod
    def from_file(cls, path: str | Path, data_dir: str | Path, **kw) -> tuple["AlertDispatcher", LoadedAlertsConfig]:
        """Load the receivers file and open the outbox; problems are returned (bad receivers are skipped), not raised."""
        loaded = load_alerts_config(path)
        for p in loaded.problems:
            log.warning("alerts config: %s", p)
        return cls(loaded.config, data_dir, **kw), loaded

    # --- state changes ---------------------------------------------------------
    def process(self, findings: list[Finding], now: float | None = None) -> list[Notification]:
        """Take the findings open now; returns the notifications this queued (possibly none yet: group_wait)."""
        now = self.clock() if now is None else now
        alerts: list[Alert] = incident_alerts(findings, now)  # one alert per incident, headed by its cause
        with self._lock:
            self.grouper.observe(alerts, now)
            return self._flush(now)

    def flush(self, now: float | None = None) -> list[Notification]:
        """Queue whatever groups are due at `now` (group_wait / group_interval elapsed)."""
        with self._lock:
            return self._flush(self.clock() if now is None else now)

    def _flush(self, now: float) -> list[Notification]:
        queued = self.outbox.commit(self.grouper.flush(now), self.grouper.to_dict())
        for n in queued:
            selfmetrics.QUEUED.labels(n.receiver).inc()
            log.info("queued %s for %s: %s %s (%d alerts)", n.id, n.receiver, n.status, n.group_key, len(n.alerts))
            if n.receiver in self._wake:
                self._wake[n.receiver].set()
        return queued

    # --- delivery --------------------------------------------------------------
    def deliver_due(self, now: float | None = None, receiver: str | None = None) -> list[tuple[Notification, Attempt]]:
        """Try every notification whose time has come (one per group, oldest first); returns each outcome."""
        out = []
        now = self.clock() if now is None else now
        for entry in self.outbox.due(now, receiver):
            rec = self.receivers.get(entry.notification.receiver)
            if rec is None:
                self.outbox.mark(entry.seq, ST_FAILED, now, "receiver no longer configured")
                continue
            attempt = self._attempt(entry.notification, rec)
            done = self.clock()
            attempts = entry.attempts + 1
            outcome = attempt.outcome
            if outcome == DELIVERED:
                self.outbox.mark(entry.seq, ST_DELIVERED, done)
            elif outcome == FAILED:
                log.warning("notification %s to %s failed permanently: %s", entry.id, rec.name, attempt.error)
                self.outbox.mark(entry.seq, ST_FAILED, done, attempt.error)
            elif done - entry.notification.created_at > rec.max_retry_age:
                outcome = EXPIRED
                log.warning("notification %s to %s expired after %d attempts: %s", entry.id, rec.name, attempts, attempt.error)
                self.outbox.mark(entry.seq, EXPIRED, done, attempt.error)
            else:
                delay = max(backoff(attempts, self.backoff_base, self.backoff_cap), attempt.retry_after or 0.0)
                log.info("notification %s to %s: %s; retry %d in %.1fs", entry.id, rec.name, attempt.error, attempts, delay)
                self.outbox.mark(entry.seq, PENDING, done, attempt.error, done + delay)
            selfmetrics.ATTEMPTS.labels(rec.name, outcome).inc()
            out.append((entry.notification, attempt))
        self._update_pending()
        return out

    def _update_pending(self) -> None:
        counts = self.outbox.counts()
        for name in self.receivers:
            selfmetrics.PENDING.labels(name).set(counts.get(name, {}).get(PENDING, 0))

    def _attempt(self, n: Notification, rec: ReceiverConfig) -> Attempt:
        req = SINKS[rec.format].render(n, rec, self.clock(), self.config.external_url)
        return send(self._client, req, rec.timeout)

    def tick(self, now: float | None = None) -> None:
        """One synchronous round: flush due groups, then deliver everything due."""
        self.flush(now)
        self.deliver_due(now)

    # --- background threads ----------------------------------------------------
    def start(self) -> "AlertDispatcher":
        self._stop.clear()
        self._threads = [threading.Thread(target=self._flush_loop, name="alerts-flush", daemon=True)]
        self._threads += [
            threading.Thread(target=self._send_loop, args=(name,), name=f"alerts-send-{name}", daemon=True)
            for name in self.receivers
        ]
        for t in self._threads:
            t.start()
        return self

    def _flush_loop(self) -> None:
        last_prune = 0.0
        while not self._stop.wait(self.tick_s):
            try:
                self.flush()
                now = self.clock()
                if now - last_prune > 3600:
                    self.outbox.prune(now - KEEP_FINISHED_S)
                    last_prune = now
            except Exception:  # keep flushing; the next tick retries
                log.exception("alert flush failed")

    def _send_loop(self, name: str) -> None:
        wake = self._wake[name]
        while not self._stop.is_set():
            try:
                self.deliver_due(receiver=name)
                nxt = self.outbox.next_attempt_at(name)
            except Exception:
                log.exception("alert delivery to %s failed", name)
                nxt = None
            wait = self.tick_s if nxt is None else min(self.tick_s, max(0.0, nxt - self.clock()))
            wake.wait(wait)
            wake.clear()

    def stop(self) -> None:
        self._stop.set()
        for e in self._wake.values():
            e.set()
        for t in self._threads:
            t.join(timeout=max(r.timeout for r in self.receivers.values()) + 5 if self.receivers else 5)
        self._threads = []

    def close(self) -> None:
        self.stop()
        self._client.close()
        self.outbox.close()

    def status(self) -> dict:
        """receiver -> counts by state, plus groups being tracked (for the UI and /metrics)."""
        with self._lock:
            groups = len(self.grouper.groups)
        return {"receivers": self.outbox.counts(), "groups": groups}
