"""Named fault scenarios for the bundled mesh, in one explicit list."""
from mesh.scenarios.base import Scenario
from mesh.scenarios.registry import SCENARIOS, get, names

__all__ = ["SCENARIOS", "Scenario", "get", "names"]
