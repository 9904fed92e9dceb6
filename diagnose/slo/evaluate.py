"""One SLO evaluated at one instant: error ratio and burn rate per window, alert pairs, budget left.

The status is what `/api/v1/slos` serves and what reports chart; a page or
ticket alert that fires becomes a finding of category `slo` whose evidence has
every window's numbers and the callers that burn the budget.

Budget, as Sloth and Pyrra mean it: the share of the whole period's error budget
consumed. With less history than the period (a fresh start, a demo) the observed
share of the period is what was spent from, and the rest of the period is not
assumed bad: consumed = (error ratio / budget ratio) x observed share. A 3-minute
outage therefore uses 3 minutes' worth of budget instead of showing "-60,000 %";
remaining is reported down to -100 % (consumed keeps the true multiple).
Alerts are multiwindow burn-rate alerts: they resolve once the short window is
clean; "budget exhausted" is a finding only while the budget is still burning.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from diagnose.catalog import make
from diagnose.findings import Finding, ResourceRef
from diagnose.slo.history import SliHistory
from diagnose.slo.spec import SLO
from diagnose.slo.windows import AlertWindow, format_duration

PAGE_SEVERITIES = ("page", "critical")


@dataclass
class AlertStatus:
    window: AlertWindow
    long_error_ratio: float
    short_error_ratio: float
    threshold: float
    firing: bool

    @property
    def burn(self) -> float:
        """The burn rate the pair shows (the lower of its two windows: both must exceed the factor)."""
        return min(self.long_error_ratio, self.short_error_ratio) / (self.threshold / self.window.factor) \
            if self.threshold else 0.0

    def to_dict(self, budget: float) -> dict[str, Any]:
        w = self.window
        return {"severity": w.severity, "long_window": format_duration(w.long_s),
                "short_window": format_duration(w.short_s), "factor": round(w.factor, 6),
                "budget_percent": round(w.budget_percent, 4), "threshold": self.threshold,
                "long_error_ratio": self.long_error_ratio, "short_error_ratio": self.short_error_ratio,
                "long_burn_rate": self.long_error_ratio / budget if budget else None,
                "short_burn_rate": self.short_error_ratio / budget if budget else None,
                "firing": self.firing}


@dataclass
class SloStatus:
    slo: SLO
    now: float
    error_ratio: float  # over the period (what history there is)
    requests: float  # events over the period
    budget_remaining: float  # 1 - error_ratio / budget; negative once overspent
    burn_rates: dict[str, float]  # window label -> burn rate
    window_ratios: dict[str, float]
    alerts: list[AlertStatus]
    history_s: float  # how much history the numbers rest on
    budget_consumed: float = 0.0  # share of the period's error budget spent (1.0 = all; may exceed 1)
    budget_series: list[list[float]] = field(default_factory=list)  # [unix seconds, budget remaining]
    edges: list[dict[str, Any]] = field(default_factory=list)

    @property
    def observed_share(self) -> float:
        """How much of the SLO period the numbers rest on (0..1)."""
        return min(max(self.history_s / self.slo.period_s, 0.0), 1.0) if self.slo.period_s else 1.0

    @property
    def burning(self) -> bool:
        """Errors above the budget rate right now: a page pair's short window (the fast reset) burns faster than 1x."""
        usable = [w for w in self.slo.windows if w.short_s >= 1.0] or list(self.slo.windows)
        fast = [w for w in usable if w.severity in PAGE_SEVERITIES] or usable
        return any(self.burn_rates.get(format_duration(w.short_s), 0.0) > 1.0 for w in fast)

    @property
    def state(self) -> str:
        if self.requests <= 0:
            return "no_data"
        if any(a.firing and a.window.severity in PAGE_SEVERITIES for a in self.alerts) and self.slo.page:
            return "page"
        if any(a.firing and a.window.severity not in PAGE_SEVERITIES for a in self.alerts) and self.slo.ticket:
            return "ticket"
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        d = self.slo.to_dict()
        state = self.state
        d.update({"key": self.slo.key, "budget": self.slo.budget, "state": state,
                  "alert": None if state == "no_data" else state,
                  "error_ratio": self.error_ratio, "requests": self.requests,
                  "budget_remaining": self.budget_remaining, "budget_consumed": self.budget_consumed,
                  "observed_share": round(self.observed_share, 6), "burning": self.burning, "burn_rates": self.burn_rates,
                  "error_ratios": self.window_ratios, "history_seconds": round(self.history_s, 3),
                  "windows": [a.to_dict(self.slo.budget) for a in self.alerts],
                  "budget_series": self.budget_series, "edges": self.edges, "evaluated_at": self.now})
        return d


RatioFn = Callable[[float], tuple[float, float]]  # window seconds -> (error ratio, events)


def evaluate(slo: SLO, history: SliHistory | None, now: float, ratio: RatioFn | None = None) -> SloStatus:
    """The SLO's numbers at `now`, from its event history or from `ratio` (e.g. Prometheus queries)."""
    budget = slo.budget
    if ratio is None:
        if history is None:
            raise ValueError("evaluate needs a history or a ratio function")
        ratio = lambda w: history.ratio(w, now)  # noqa: E731
    ratios: dict[float, float] = {}
    for w in slo.windows:
        for sec in (w.short_s, w.long_s):
            if sec not in ratios:
                ratios[sec] = ratio(sec)[0]
    alerts = []
    for w in slo.windows:
        t = w.threshold(slo.objective)
        alerts.append(AlertStatus(w, ratios[w.long_s], ratios[w.short_s], t,
                                  w.fires(ratios[w.long_s], ratios[w.short_s], slo.objective)))
    period_ratio, period_total = ratio(slo.period_s)
    series, history_s = [], slo.period_s
    if history is not None:
        first = history.first_t
        history_s = (now - first) if first is not None else 0.0
        series = [[t, remaining(consumed(bad / tot if tot else 0.0, budget, (t - first) / slo.period_s))]
                  for t, tot, bad in history.series(now)] if first is not None else []
    spent = consumed(period_ratio, budget, history_s / slo.period_s if slo.period_s else 1.0)
    return SloStatus(
        slo=slo, now=now, error_ratio=period_ratio, requests=period_total, budget_consumed=spent,
        budget_remaining=remaining(spent) if budget else 0.0,
        burn_rates={format_duration(sec): r / budget for sec, r in sorted(ratios.items())},
        window_ratios={format_duration(sec): r for sec, r in sorted(ratios.items())},
        alerts=alerts, history_s=max(history_s, 0.0), budget_series=series)


def consumed(error_ratio: float, budget: float, observed_share: float) -> float:
    """Share of the period's error budget spent: errors over the observed part, nothing over the rest."""
    if budget <= 0:
        return 0.0
    return max(error_ratio, 0.0) / budget * min(max(observed_share, 0.0), 1.0)


def remaining(spent: float) -> float:
    """Budget left, 1 - consumed, floored at -100 % (an overspent budget is 'exhausted', whatever the multiple)."""
    return max(1.0 - spent, -1.0)


def _slo_ref(slo: SLO) -> ResourceRef:
    return ResourceRef(kind="ServiceLevelObjective", name=slo.name, namespace=slo.namespace, source=slo.source)


def _service_ref(slo: SLO) -> list[ResourceRef]:
    parts = slo.service.split(".")
    if len(parts) >= 3 and parts[2] == "svc":
        return [ResourceRef(kind="Service", name=parts[0], namespace=parts[1])]
    return []


def findings_for(status: SloStatus) -> list[Finding]:
    """MS4001 (page) or MS4002 (ticket) for the worst firing alert, and MS4003 once the budget is spent."""
    slo, out = status.slo, []
    state = status.state
    evidence = {"edge_key": slo.key, "slo": slo.to_dict(), "windows": [a.to_dict(slo.budget) for a in status.alerts],
                "burn_rates": status.burn_rates, "error_ratios": status.window_ratios,
                "budget_remaining": status.budget_remaining, "budget_consumed": status.budget_consumed,
                "observed_share": status.observed_share, "edges": status.edges,
                "history_seconds": round(status.history_s, 3)}
    if state in ("page", "ticket"):
        pool = [a for a in status.alerts if a.firing and (a.window.severity in PAGE_SEVERITIES) == (state == "page")]
        worst = max(pool, key=lambda a: a.burn)
        f = make("MS4001" if state == "page" else "MS4002", resource=_slo_ref(slo), related=_service_ref(slo),
                 slo=slo.key, burn_rate=worst.burn, long_window=format_duration(worst.window.long_s),
                 short_window=format_duration(worst.window.short_s), factor=round(worst.window.factor, 4),
                 budget_remaining_pct=100.0 * status.budget_remaining)
        f.evidence = dict(evidence, alert=worst.to_dict(slo.budget))
        bad_rps = sum(e.get("bad_rps", 0.0) for e in status.edges)
        f.impact = {"rps": round(bad_rps, 4), "share": round(worst.short_error_ratio, 4),
                    "burn_rate": round(worst.burn, 3)}
        out.append(f)
    if state != "no_data" and status.budget_remaining <= 0 and status.burning:
        f = make("MS4003", resource=_slo_ref(slo), related=_service_ref(slo), slo=slo.key,
                 budget_remaining_pct=100.0 * status.budget_remaining, period=slo.period)
        f.evidence = dict(evidence)
        f.impact = {"rps": round(sum(e.get("bad_rps", 0.0) for e in status.edges), 4),
                    "share": round(status.error_ratio, 4)}
        out.append(f)
    return out
