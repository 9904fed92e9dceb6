"""Service level objectives: specs (meshscope, Sloth, OpenSLO, Pyrra), burn-rate math, multiwindow alerts."""
from diagnose.slo.engine import SloEngine
from diagnose.slo.evaluate import AlertStatus, SloStatus, evaluate, findings_for
from diagnose.slo.history import SliHistory
from diagnose.slo.load import SloLoad, is_slo_kind, load_slo_text, load_slos, slos_from_objects
from diagnose.slo.promql import prometheus_rules, ratio_from_prometheus, scalar_query, sli_queries
from diagnose.slo.spec import SLO, SpecError, slo_from_spec
from diagnose.slo.windows import (
    AlertWindow, budget_factor, burn_rate, error_budget, format_duration, google_windows, parse_duration,
    pyrra_windows, windows_from_budget,
)

DEMO_SLOS = __file__.rsplit("/", 1)[0] + "/demo_slos.yaml"

__all__ = [
    "DEMO_SLOS", "SLO", "AlertStatus", "AlertWindow", "SliHistory", "SloEngine", "SloLoad", "SloStatus",
    "SpecError", "budget_factor", "burn_rate", "error_budget", "evaluate", "findings_for", "format_duration",
    "google_windows", "is_slo_kind", "load_slo_text", "load_slos", "parse_duration", "prometheus_rules",
    "pyrra_windows", "ratio_from_prometheus", "scalar_query", "sli_queries", "slo_from_spec", "slos_from_objects",
    "windows_from_budget",
]
