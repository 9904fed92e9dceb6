"""Each package's __init__ only re-exports: every name in __all__ must exist."""
import importlib

import pytest

PACKAGES = ["mesh", "mesh.config", "collector", "topology", "diagnose", "dashboard", "meshscope"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_exist(name):
    mod = importlib.import_module(name)
    for attr in getattr(mod, "__all__", []):
        assert hasattr(mod, attr), f"{name}.__all__ names {attr!r} which does not exist"
