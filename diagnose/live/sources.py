"""Where the live loop reads telemetry and config from: the collector store, Prometheus, a snapshot provider."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from diagnose.findings import Finding

log = logging.getLogger(__name__)

RequestsFn = Callable[[float, float], pd.DataFrame]  # (start, end) epoch seconds -> requests table
RatesFn = Callable[[float, float], pd.DataFrame]  # (window_s, end) -> Istio rate frame


@dataclass
class LiveSources:
    """Where the live loop reads from; any part may be missing (None)."""

    requests: RequestsFn | None = None
    rates: RatesFn | None = None
    snapshot: Callable[[], Any] | None = None  # -> mesh.config.Snapshot
    analyze: Callable[[Any], list[Finding]] | None = None  # snapshot -> config findings
    extra: Callable[[float], list[Finding]] | None = None  # evaluation time -> findings from other signals (crash loops)

    @classmethod
    def from_store(cls, store: Any, snapshot: Callable[[], Any] | None = None,
                   analyze: Callable[[Any], list[Finding]] | None = None) -> LiveSources:
        """Sources over the collector's TelemetryStore (and a snapshot provider such as `BundledMesh.snapshot`)."""
        from collector.query import istio_rates

        return cls(requests=lambda start, end: store.requests(start, end),
                   rates=lambda window, end: istio_rates(store, window, end), snapshot=snapshot,
                   analyze=analyze)

    @classmethod
    def from_prometheus(cls, client: Any, snapshot: Callable[[], Any] | None = None,
                        analyze: Callable[[Any], list[Finding]] | None = None) -> LiveSources:
        """Sources over a Prometheus server (`collector.sources.prom_api.PrometheusClient`): rates only."""
        return cls(rates=lambda window, end: client.istio_rates(window, end), snapshot=snapshot, analyze=analyze)


def default_analyze() -> Callable[[Any], list[Finding]] | None:
    """The config analysis (`diagnose.analyze`), when it can be imported."""
    try:
        from diagnose import analyze  # type: ignore[attr-defined]
    except ImportError:
        return None
    return analyze


def combine_extra(*sources: Callable[[float], list[Finding]] | None) -> Callable[[float], list[Finding]]:
    """Several `LiveSources.extra` sources (crash loops, canaries, ...) as one; a failing source costs its own findings only."""
    present = [s for s in sources if s is not None]

    def found(now: float) -> list[Finding]:
        out: list[Finding] = []
        for s in present:
            try:
                out.extend(s(now))
            except Exception:
                log.warning("live finding source %r failed", s, exc_info=True)
        return out

    return found
