"""The runtime rule contract: metadata plus one `analyze(ctx)`, like the config rules.

Rules read only the `RuntimeContext` (tables of one window and the config
snapshot) and return findings built through the catalog; they never fetch data,
so the live loop, tests and benchmarks run exactly the same code.
"""
from __future__ import annotations

from typing import Protocol

from diagnose.findings import Finding
from diagnose.rules.runtime.traffic import RuntimeContext


class RuntimeRule(Protocol):
    name: str  # "family.Check", e.g. response_flags.NoCluster
    description: str  # one line, what --list-rules prints
    codes: tuple[str, ...]  # catalog codes the rule can emit

    def analyze(self, ctx: RuntimeContext) -> list[Finding]: ...
