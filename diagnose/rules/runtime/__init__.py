"""Runtime rules over traffic tables: the ONE explicit list of every runtime rule that runs.

Ordered by family, then as the failure matrix lists causes; searching this file
shows everything the runtime diagnoser checks.
"""
from diagnose.rules.runtime import asm, errors, inferred, keepalive, latency, masked, rbac, response_flags
from diagnose.rules.runtime.base import RuntimeRule
from diagnose.rules.runtime.engine import analyze_runtime
from diagnose.rules.runtime.traffic import RuntimeContext

ALL: list[RuntimeRule] = [
    *asm.RULES,
    *errors.RULES,
    *latency.RULES,
    *rbac.RULES,
    *response_flags.RULES,
    *keepalive.RULES,
    *masked.RULES,
    *inferred.RULES,
]

__all__ = ["ALL", "RuntimeContext", "RuntimeRule", "analyze_runtime"]
