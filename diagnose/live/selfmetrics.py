"""The live diagnoser's own metrics: how often it diagnoses, and why it did not.

An SRE asking "is meshscope keeping up, or idling as it should?" reads these at
`/metrics` beside the collector's: cycles run (and the CPU they took), cycles skipped
because no input changed, and cycles skipped because the telemetry that changed was
steady (the live loop's steady check); each steady check's result, so a box where cycles
keep running is explained (slow answers, errors, an open finding) rather than guessed; and
each cycle's CPU by phase. A private registry, as the collector's and the
alert dispatcher's, so several diagnosers in one process (tests) do not collide.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

REGISTRY = CollectorRegistry(auto_describe=True)

CYCLES = Counter("meshscope_diagnoser_cycles_total",
                 "Live diagnoser cycles by outcome: run (diagnosed), unchanged (no input changed), "
                 "steady (new telemetry, all of it steady)", ["outcome"], registry=REGISTRY)
CYCLE_CPU = Counter("meshscope_diagnoser_cycle_cpu_seconds_total", "CPU time the diagnoser's cycles took.",
                    registry=REGISTRY)
STEADY_CHECKS = Counter("meshscope_diagnoser_steady_checks_total",
                        "Steady checks by result: steady (the cycle was skipped), or why the new telemetry was not "
                        "steady: open_finding, config_changed, rates_only (no logged requests to judge), error "
                        "(code >= 400), no_answer (HTTP code 0), response_flags, slow (the latency rule's "
                        "thresholds), unreadable (the requests source failed)", ["result"], registry=REGISTRY)
PHASE_CPU = Counter("meshscope_diagnoser_phase_cpu_seconds_total",
                    "CPU time of the diagnoser's cycles by phase (read, rules, baseline, slo, config, correlate, "
                    "extra, track, subscribers): where a cycle's cost goes", ["phase"], registry=REGISTRY)
