"""How an SLO's alert state and budget read, shared by the SLO page and the overview."""
from __future__ import annotations

from typing import Any

ALERT_BADGE = {"page": "failing", "ticket": "degraded", "ok": "healthy", None: "na"}  # alert -> badge colour


def alert_text(slo: dict[str, Any]) -> str:
    """`alert` is None while the SLO has no data yet (the engine's `no_data` state)."""
    return "no data" if slo.get("alert") is None else str(slo["alert"])


def budget_text(slo: dict[str, Any]) -> str:
    value = slo.get("budget_remaining")
    if not isinstance(value, (int, float)) or value != value:
        return "n/a"
    return f"{100 * value:.1f}%" + (" (overspent)" if value < 0 else "")
