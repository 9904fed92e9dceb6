"""Istio-style guard tests: every rule registered once, described, and declaring exactly what it reads;
every catalog code well-formed, unique and used."""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
import yaml

from diagnose.analysis import run_rule
from diagnose.catalog import CATALOG, CatalogError, load_catalog
from diagnose.catalog.registry import CATALOG_DIR
from diagnose.inputs import PROBLEM_CODES
from diagnose.rule import Rule
from diagnose.rules import ALL_RULES
from mesh.config import MeshConfig, Snapshot, load_paths
from tests.corpus import guard_sources

import diagnose.rules.config as config_pkg

#: Codes reported by the runner itself (or the cross-cluster comparison) rather than by a rule.
ENGINE_CODES = set(PROBLEM_CODES.values()) | {"MS0008", "MS0009", "MS0010", "MS0011", "MS0012", "MS0013", "MS0099",
                                               "MS1508"}


def _rule_classes() -> list[type]:
    out = []
    for mod in pkgutil.iter_modules(config_pkg.__path__):
        module = importlib.import_module(f"diagnose.rules.config.{mod.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ == module.__name__ and hasattr(obj, "metadata") and hasattr(obj, "analyze"):
                out.append(obj)
    return out


def test_every_rule_class_is_registered():
    missing = [c.__name__ for c in _rule_classes() if not any(isinstance(r, c) for r in ALL_RULES)]
    assert not missing, f"rule classes not in diagnose.rules.ALL_RULES: {missing}"


def test_rules_satisfy_protocol_with_unique_names_and_descriptions():
    names = [r.metadata.name for r in ALL_RULES]
    assert len(names) == len(set(names)), "rule names must be unique"
    for r in ALL_RULES:
        assert isinstance(r, Rule)
        family, _, check = r.metadata.name.partition(".")
        assert family and check[:1].isupper(), f"{r.metadata.name}: name must read family.Check"
        assert r.metadata.description.strip(), f"{r.metadata.name}: empty description"
        assert r.metadata.inputs, f"{r.metadata.name}: no inputs"
        for code in r.metadata.codes:
            assert code in CATALOG, f"{r.metadata.name}: unknown code {code}"


def test_every_catalog_code_is_used_by_a_rule_or_the_engine():
    used = {c for r in ALL_RULES for c in r.metadata.codes} | ENGINE_CODES
    mine = {c for c, e in CATALOG.items() if e.file == "config.yaml"}
    assert mine - used == set(), f"config.yaml codes no rule reports: {sorted(mine - used)}"


def _all_inputs() -> list[Snapshot]:
    """The data the declared-inputs guard runs on: the upstream YAML kept in the repository and our rule
    fixtures (separately, so one source's objects do not short-circuit another's checks), under the
    default mesh config and with auto-mTLS off (several rules read more when it is off)."""
    sources = [*guard_sources(), [Path(__file__).parent / "data"]]
    snaps = []
    for paths in sources:
        objects = load_paths(paths).objects
        snaps += [Snapshot(objects), Snapshot(objects, MeshConfig(enable_auto_mtls=False))]
    return snaps


@pytest.fixture(scope="module")
def everything() -> list[Snapshot]:
    return _all_inputs()


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.metadata.name)
def test_declared_inputs_equal_kinds_read(rule, everything):
    reads: set[str] = set()
    for snap in everything:
        ctx = run_rule(rule, snap)
        assert not [f for f in ctx.findings if f.code == "MS0099"], [f.message for f in ctx.findings]
        assert ctx.reads <= set(rule.metadata.inputs), (
            f"{rule.metadata.name} read {sorted(ctx.reads - set(rule.metadata.inputs))} without declaring it")
        reads |= ctx.reads
    assert reads == set(rule.metadata.inputs), (
        f"{rule.metadata.name} declares {sorted(set(rule.metadata.inputs) - reads)} but never read them")


def test_reported_codes_are_declared(everything):
    for rule in ALL_RULES:
        for snap in everything:
            reported = {f.code for f in run_rule(rule, snap).findings}
            assert reported <= set(rule.metadata.codes), f"{rule.metadata.name} reported undeclared {reported}"


@pytest.mark.parametrize("entries, needle", [
    ([{"code": "MS9", "name": "Xray", "severity": "error", "category": "route", "template": "t"}], "4 digits"),
    ([{"code": "MS1001", "name": "Xray", "severity": "fatal", "category": "route", "template": "t"}], "severity"),
    ([{"code": "MS1001", "name": "Xray", "severity": "error", "category": "route"}], "template"),
    ([{"code": "MS1001", "name": "Xray", "severity": "error", "category": "route", "template": "t",
       "equivalents": ["IST12"]}], "equivalents"),
])
def test_catalog_rejects_malformed_entries(tmp_path, entries, needle):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(entries))
    with pytest.raises(CatalogError, match=needle):
        load_catalog(tmp_path)


def test_catalog_rejects_codes_defined_twice_across_files(tmp_path):
    entry = {"code": "MS1001", "name": "Alpha", "severity": "error", "category": "route", "template": "t"}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump([entry]))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump([dict(entry, name="Bravo")]))
    with pytest.raises(CatalogError, match="MS1001 already defined in a.yaml"):
        load_catalog(tmp_path)


def test_catalog_merges_every_file_in_the_folder():
    assert {e.file for e in CATALOG.values()} == {p.name for p in CATALOG_DIR.glob("*.yaml")}


@pytest.mark.parametrize("name", ["diagnose", "diagnose.catalog", "diagnose.rules", "mesh.config"])
def test_package_facades_export_sorted_existing_names(name):
    mod = importlib.import_module(name)
    assert mod.__all__ == sorted(mod.__all__), f"{name}.__all__ is not sorted"
    for attr in mod.__all__:
        assert getattr(mod, attr, None) is not None, f"{name}.__all__ names missing {attr}"
