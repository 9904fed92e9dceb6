"""Package facades only re-export: every name in __all__ exists (alerts and reports)."""
import importlib

import pytest


@pytest.mark.parametrize("name", ["diagnose.alerts", "diagnose.reports"])
def test_all_names_exist_and_are_sorted(name):
    mod = importlib.import_module(name)
    assert mod.__all__ == sorted(mod.__all__)
    for attr in mod.__all__:
        assert hasattr(mod, attr), f"{name}.__all__ names {attr!r} which does not exist"
