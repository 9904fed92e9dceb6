"""The suite's order: tests that start no mesh first, then modules with a mesh of their own, then those of the
shared mesh that never read the session stack, then the session stack's.

Why: the shared bundled mesh and the session stack (tests/fixtures/mesh.py, stack.py) run from the first test
that asks for them to the end of the session: a dozen Envoys, the demo apps and their 10 rps, and in this very
process the stack's 1 s scrapes, log tailing, OTLP ingest and diagnoser cycles, which take CPU from the box and
the GIL from every test that runs after them. In directory order the first module to ask for them is in
tests/cluster/, so nearly every unit and Chromium test of the suite ran beside a live mesh. Moving whole modules
(so module fixtures are set up once, and a module's tests keep their order) puts those tests before it; the
modules that start a mesh of their own run before the shared one exists, alone on the box. The same holds one
step later: the shared mesh starts in a second, the stack's work then goes on for the rest of the session, so the
modules that use the mesh but not the stack (scenario, xDS, tracing, graph-vs-logs tests, some with a stack of
their own) run before the stack starts, not beside it. A test with no e2e mark and no module- or class-scoped
fixture moves on its own (recorded-traffic tests beside one e2e test in test_element_metrics.py,
test_service_metrics.py). Within each group the directory order is kept.
"""
from __future__ import annotations

import pytest

# fixtures that start (or are) the session's shared mesh; item.fixturenames holds the transitive closure
SHARED_MESH = frozenset({"bundled_mesh", "bundled_mesh_otlp", "mesh_scenario", "mesh_config", "mesh_traffic"})
SESSION_STACK = frozenset({"stack"})  # the session's meshscope around that mesh (tests/fixtures/stack.py)


def group_of(item: pytest.Item) -> int:
    """0: no mesh; 1: an end-to-end test (a mesh or stack of its own); 2: the shared mesh; 3: the session stack."""
    names = set(getattr(item, "fixturenames", ()))
    if SESSION_STACK & names:
        return 3
    if SHARED_MESH & names:
        return 2
    return 1 if item.get_closest_marker("e2e") else 0


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    module_group: dict[object, int] = {}
    for item in items:
        module_group[item.path] = max(module_group.get(item.path, 0), group_of(item))

    def rank(item: pytest.Item) -> int:
        return group_of(item) if movable(item) else module_group[item.path]

    items.sort(key=rank)  # stable: directory order within a group


def movable(item: pytest.Item) -> bool:
    """A test that may leave its module's group: a unit test sharing no fixture wider than itself with the module."""
    if item.get_closest_marker("e2e"):
        return False
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.values() if info is not None else ()
    return not any(d and d[-1].scope in ("package", "module", "class") for d in defs)
