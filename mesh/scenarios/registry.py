"""The one list of scenarios, in the order `meshscope scenario list` prints them."""
from __future__ import annotations

from mesh.scenarios import asm_circuit_breaker, asm_rate_limit
from mesh.scenarios import (canary_regression, circuit_breaker, fault_abort, fault_delay, keepalive_race,
                            latency_regression, missing_subset, mtls_mismatch, outlier_ejection, rbac_deny, timeout,
                            unknown_host, weights_typo)
from mesh.scenarios.base import Scenario

SCENARIOS: list[Scenario] = [
    mtls_mismatch.SCENARIO,
    missing_subset.SCENARIO,
    unknown_host.SCENARIO,
    weights_typo.SCENARIO,
    fault_abort.SCENARIO,
    fault_delay.SCENARIO,
    timeout.SCENARIO,
    circuit_breaker.SCENARIO,
    rbac_deny.SCENARIO,
    outlier_ejection.SCENARIO,
    latency_regression.SCENARIO,
    keepalive_race.SCENARIO,
    asm_rate_limit.SCENARIO,
    asm_circuit_breaker.SCENARIO,
    canary_regression.SCENARIO,
]


def names() -> list[str]:
    return [s.name for s in SCENARIOS]


def get(name: str) -> Scenario:
    for s in SCENARIOS:
        if s.name == name:
            return s
    raise KeyError(f"unknown scenario {name!r}; known: {', '.join(names())}")
