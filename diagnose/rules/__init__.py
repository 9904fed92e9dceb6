"""Every config rule, in one explicit list (alphabetical by family, then name).

Searching this file shows every rule `meshscope analyze` runs; nothing is
registered at import time.
"""
from diagnose.rule import Rule

ALL_RULES: list[Rule] = [
]


def by_name(*names: str) -> list[Rule]:
    """The rules with these names (unknown names raise KeyError)."""
    index = {r.metadata.name: r for r in ALL_RULES}
    return [index[n] for n in names]


__all__ = ["ALL_RULES", "Rule", "by_name"]
