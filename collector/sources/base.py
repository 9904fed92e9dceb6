"""The one small protocol every collector source follows.

A source turns something outside (sidecar admin endpoints, log files, an HTTP receiver, a
Prometheus server) into rows in a TelemetryStore. It can be driven two ways: `poll()` does one
round synchronously (tests, `meshscope report`), `start()`/`stop()` run it in the background
(`meshscope up`). `stop()` must leave no thread, socket or file handle behind.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Source(Protocol):
    name: str

    def poll(self) -> int:
        """Do one round of collection now; return rows added to the store."""

    def start(self) -> None:
        """Begin collecting in the background."""

    def stop(self) -> None:
        """Stop and release everything; safe to call twice."""
