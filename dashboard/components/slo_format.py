"""How an SLO's alert state and budget read, shared by the SLO page and the overview."""
from __future__ import annotations

from typing import Any

ALERT_BADGE = {"page": "failing", "ticket": "degraded", "ok": "healthy", None: "na"}  # alert -> badge colour


def alert_text(slo: dict[str, Any]) -> str:
    """`alert` is None while the SLO has no data yet (the engine's `no_data` state)."""
    return "no data" if slo.get("alert") is None else str(slo["alert"])


def budget_text(slo: dict[str, Any]) -> str:
    """Budget left of the whole period, how far overspent, and how much of the period the numbers rest on."""
    value = slo.get("budget_remaining")
    if not isinstance(value, (int, float)) or value != value:
        return "n/a"
    text = f"{100 * value:.1f}%"
    consumed = slo.get("budget_consumed")
    if value < 0:
        text += f" (overspent: {consumed:.1f}x the budget)" if isinstance(consumed, (int, float)) and consumed > 1 \
            else " (overspent)"
    share = slo.get("observed_share")
    if isinstance(share, (int, float)) and 0 <= share < 1:
        text += f", {100 * share:.2g}% of the period observed"
    return text
