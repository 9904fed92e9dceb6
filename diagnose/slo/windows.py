"""Burn-rate arithmetic and multiwindow, multi-burn-rate alert windows (slo-alerting.md §1-§3).

Budget B = 1 - objective; burn rate over a window = error ratio / B; an alert
pair (long L, short S, factor k) fires when both windows' error ratios exceed
k x B. The factor is derived, as Sloth does, from the share of the budget the
alert may consume before it fires: k = consumed x period / L.

Periods: for 30 d and 28 d the Google/Sloth windows (1h/5m, 6h/30m, 1d/2h, 3d/6h)
are used as they are (28 d gives Sloth's 13.44/5.6/2.8/0.933 factors). Any other
period scales the 30 d windows in proportion, which keeps the factors at
14.4/6/3/1; this is what makes a 1 h "demo" period observable in seconds.
Pyrra's windows (factors 14/7/2/1 scaled from 28 d) are provided for import
and comparison.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
_UNITS = {"ms": 0.001, "s": 1.0, "m": MINUTE, "h": HOUR, "d": DAY, "w": 7 * DAY, "y": 365 * DAY}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")


def parse_duration(text: str | int | float) -> float:
    """Seconds in a Prometheus-style duration such as `30d`, `1h30m`, `90s` (a YAML number is seconds; "30" is refused as ambiguous)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text <= 0:
            raise ValueError(f"duration must be positive, got {text}")
        return float(text)
    t = str(text).strip()
    if not t or _DURATION.sub("", t) != "":
        raise ValueError(f"not a duration: {text!r} (use e.g. 30d, 6h, 5m, 90s)")
    seconds = sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(t))
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """Shortest exact form: 3600 -> 1h, 90 -> 1m30s, 2592000 -> 30d."""
    s = round(seconds)
    if s <= 0:
        return f"{seconds:g}s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size:
            out.append(f"{s // size}{unit}")
            s %= size
    return "".join(out)


def error_budget(objective_percent: float) -> float:
    """Budget as a ratio: 99.9 -> 0.001 (computed as Sloth does, (100 - objective) / 100)."""
    return (100.0 - objective_percent) / 100.0


def burn_rate(error_ratio: float, objective_percent: float) -> float:
    budget = error_budget(objective_percent)
    return error_ratio / budget if budget > 0 else math.inf


def budget_factor(budget_percent: float, period_s: float, long_window_s: float) -> float:
    """Sloth's getBurnRateFactor: the burn rate that spends `budget_percent` of the budget in the long window."""
    return (budget_percent * (period_s / HOUR) / 100.0) / (long_window_s / HOUR)


@dataclass(frozen=True)
class AlertWindow:
    """One window pair: fire `severity` when both windows burn faster than `factor`."""

    severity: str  # page | ticket (Pyrra: critical | warning)
    long_s: float
    short_s: float
    factor: float
    budget_percent: float  # share of the period's budget spent when it fires
    for_s: float = 0.0  # Pyrra's `for:`; 0 for Google/Sloth windows

    @property
    def label(self) -> str:
        return f"{format_duration(self.long_s)}/{format_duration(self.short_s)}"

    def threshold(self, objective_percent: float) -> float:
        """Error ratio both windows must exceed."""
        return self.factor * error_budget(objective_percent)

    def fires(self, long_ratio: float, short_ratio: float, objective_percent: float) -> bool:
        t = self.threshold(objective_percent)
        return long_ratio > t and short_ratio > t


# Google SRE workbook / Sloth `google-30d`: (severity, budget %, short, long) at 30 days.
GOOGLE_30D = (("page", 2.0, 5 * MINUTE, HOUR), ("page", 5.0, 30 * MINUTE, 6 * HOUR),
              ("ticket", 10.0, 2 * HOUR, DAY), ("ticket", 10.0, 6 * HOUR, 3 * DAY))
SLOTH_CATALOG_PERIODS = (30 * DAY, 28 * DAY)  # Sloth ships google-30d and google-28d with the same windows


def windows_from_budget(period_s: float, table: tuple[tuple[str, float, float, float], ...]) -> list[AlertWindow]:
    """Alert windows from (severity, budget %, short, long) rows: factors derived as Sloth derives them."""
    return [AlertWindow(sev, long_s, short_s, budget_factor(pct, period_s, long_s), pct)
            for sev, pct, short_s, long_s in table]


def google_windows(period_s: float = 30 * DAY) -> list[AlertWindow]:
    """meshscope's default windows for a period (see module doc for scaling)."""
    if any(abs(period_s - p) < 1e-6 for p in SLOTH_CATALOG_PERIODS):
        return windows_from_budget(period_s, GOOGLE_30D)
    scale = period_s / (30 * DAY)
    return windows_from_budget(period_s, tuple((sev, pct, short * scale, long * scale)
                                               for sev, pct, short, long in GOOGLE_30D))


def _round_minute(seconds: float) -> float:
    return max(MINUTE, round(seconds / MINUTE) * MINUTE)


def pyrra_windows(period_s: float = 28 * DAY) -> list[AlertWindow]:
    """Pyrra's `Windows(sloWindow)`: fixed fractions of the period, rounded to the minute, factors 14/7/2/1."""
    rows = (("critical", 672, 8064, 20160, 14), ("critical", 112, 1344, 2688, 7),
            ("warning", 28, 336, 672, 2), ("warning", 7, 112, 224, 1))
    out = []
    for sev, long_div, short_div, for_div, factor in rows:
        long_s = _round_minute(period_s / long_div)
        out.append(AlertWindow(sev, long_s, _round_minute(period_s / short_div), float(factor),
                               100.0 * factor * long_s / period_s, _round_minute(period_s / for_div)))
    return out
