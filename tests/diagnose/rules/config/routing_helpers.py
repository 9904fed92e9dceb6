"""Run one rule over inline YAML and get back (code, name, path) triples, sorted."""
from __future__ import annotations

from diagnose.analysis import run_rule
from diagnose.rules import by_name
from mesh.config import MeshConfig, Snapshot, load_text


def snapshot(text: str, mesh_config: MeshConfig | None = None) -> Snapshot:
    loaded = load_text(text, "t.yaml")
    assert loaded.problems == [], loaded.problems
    return Snapshot(loaded.objects, mesh_config)


def run(rule_name: str, text: str, mesh_config: MeshConfig | None = None) -> list[tuple[str, str, str | None]]:
    (rule,) = by_name(rule_name)
    ctx = run_rule(rule, snapshot(text, mesh_config))
    return sorted((f.code, f.resource.name, f.resource.path) for f in ctx.findings)


def findings(rule_name: str, text: str, mesh_config: MeshConfig | None = None):
    (rule,) = by_name(rule_name)
    return run_rule(rule, snapshot(text, mesh_config)).findings
