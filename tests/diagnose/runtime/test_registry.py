"""Guard tests for the runtime rule list and the runtime catalog (Istio's all.go-style checks)."""
import ast
from pathlib import Path

from diagnose.catalog import CATALOG
from diagnose.rules.runtime import ALL

ROOT = Path(__file__).resolve().parents[3]


def test_rule_names_unique_described_and_codes_in_the_catalog():
    names = [r.name for r in ALL]
    assert len(names) == len(set(names))
    for r in ALL:
        assert r.description.strip(), r.name
        assert "." in r.name, r.name
        for code in r.codes:
            # MS3xxx, or a runtime code of a product family's own range (asm.yaml: MS6020-MS6029)
            assert code in CATALOG and (code.startswith("MS3") or CATALOG[code].category == "runtime"), (r.name, code)


def test_every_rule_module_is_registered():
    """Every module in diagnose/rules/runtime that defines RULES is spread into ALL."""
    folder = ROOT / "diagnose" / "rules" / "runtime"
    init = (folder / "__init__.py").read_text()
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text())
        defines = any(isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "RULES" for t in n.targets)
                      for n in tree.body)
        if defines:
            assert f"*{path.stem}.RULES" in init, f"{path.stem}.RULES is not in ALL"


def _codes_of_rule_classes() -> set[str]:
    """Codes declared by rules over other inputs than traffic (e.g. runtime.CrashLoop over process crashes)."""
    import importlib

    codes: set[str] = set()
    for path in (ROOT / "diagnose" / "rules" / "runtime").glob("*.py"):
        mod = importlib.import_module(f"diagnose.rules.runtime.{path.stem}")
        for obj in vars(mod).values():
            meta = getattr(obj, "metadata", None)
            if isinstance(obj, type) and obj.__module__ == mod.__name__ and meta is not None:
                codes |= set(getattr(meta, "codes", ()) or ())
    return codes


def test_every_runtime_catalog_code_is_emitted_somewhere():
    runtime_codes = {c for c, e in CATALOG.items() if e.file == "runtime.yaml"}
    from_rules = {c for r in ALL for c in r.codes if CATALOG[c].file == "runtime.yaml"}
    from_rules |= {c for c in _codes_of_rule_classes() if CATALOG[c].file == "runtime.yaml"}
    sources = "".join(p.read_text() for folder in ("slo", "live") for p in (ROOT / "diagnose" / folder).glob("*.py"))
    from_slo = {c for c in runtime_codes if c.startswith("MS4") and f'"{c}"' in sources}
    assert runtime_codes == from_rules | from_slo, sorted(runtime_codes - from_rules - from_slo)
    assert all(CATALOG[c].category == "slo" for c in from_slo)


def test_package_facades_export_what_they_name():
    import importlib
    for name in ("diagnose.live", "diagnose.slo", "diagnose.rules.runtime"):
        mod = importlib.import_module(name)
        assert mod.__all__ == sorted(mod.__all__) or name == "diagnose.slo", name
        for attr in mod.__all__:
            assert hasattr(mod, attr), f"{name}.__all__ names {attr!r} which does not exist"
