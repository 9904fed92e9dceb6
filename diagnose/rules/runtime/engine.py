"""Running the runtime rules over one window, isolated so one broken rule cannot hide the others."""
from __future__ import annotations

import logging
from collections.abc import Iterable

from diagnose.findings import Finding
from diagnose.rules.runtime.base import RuntimeRule
from diagnose.rules.runtime.traffic import RuntimeContext

log = logging.getLogger(__name__)


def analyze_runtime(ctx: RuntimeContext, rules: Iterable[RuntimeRule] | None = None,
                    ignore: set[str] = frozenset()) -> list[Finding]:
    """Findings of every rule (default: all runtime rules) whose codes are not in `ignore`."""
    if rules is None:
        from diagnose.rules.runtime import ALL as rules
    from diagnose.rules.runtime.inferred import evidence_source
    source = evidence_source(ctx)  # "seen in access logs" | "inferred from metrics", shown by the UI and reports
    out: list[Finding] = []
    for rule in rules:
        if set(rule.codes) <= set(ignore):
            continue
        try:
            found = rule.analyze(ctx)
        except Exception:  # a rule bug must not silence the other rules in the live loop
            log.exception("runtime rule %s failed", rule.name)
            continue
        for f in found:
            f.evidence.setdefault("evidence_source", source)
        out.extend(f for f in found if f.code not in ignore)
    return out
