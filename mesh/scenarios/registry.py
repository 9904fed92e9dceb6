"""The one list of scenarios, in the order `meshscope scenario list` prints them."""
from __future__ import annotations

from mesh.scenarios.base import Scenario

SCENARIOS: list[Scenario] = []


def names() -> list[str]:
    return [s.name for s in SCENARIOS]


def get(name: str) -> Scenario:
    for s in SCENARIOS:
        if s.name == name:
            return s
    raise KeyError(f"unknown scenario {name!r}; known: {', '.join(names())}")
