"""The bundled mesh's scenarios through the security rules, and `meshscope analyze` on mtls-mismatch's config."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from diagnose import analyze
from mesh.config import ConfigObject, Snapshot, load_paths
from mesh.scenarios.registry import SCENARIOS, get

REPO = Path(__file__).resolve().parents[4]
BASELINE = REPO / "mesh" / "demo" / "bookinfo.yaml"


def with_scenario(name: str | None) -> list[ConfigObject]:
    """The demo baseline with a scenario's objects applied on top (same kind/namespace/name replaces)."""
    objects = {o.key: o for o in load_paths([BASELINE]).objects}
    if name is not None:
        objects.update({o.key: o for o in get(name).objects})
    return list(objects.values())


def security_findings(objects: list[ConfigObject]):
    return [f for f in analyze(Snapshot(objects)) if f.code.startswith("MS2") or f.code == "MS0099"]


def test_baseline_has_no_security_findings():
    assert security_findings(with_scenario(None)) == []


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_scenarios_raise_only_the_security_codes_they_expect(name):
    scenario = get(name)
    found = {f.code for f in security_findings(with_scenario(name))}
    expected = {c for c in scenario.expected_codes if c.startswith("MS2")}
    assert found == expected


def test_meshscope_analyze_flags_mtls_mismatch_on_the_destination_rule(tmp_path):
    docs = [o.raw for o in with_scenario("mtls-mismatch")]
    (tmp_path / "mesh.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    proc = subprocess.run([sys.executable, "-m", "meshscope", "analyze", "--format", "json", str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 1, proc.stderr  # an error-level finding
    findings = [f for f in json.loads(proc.stdout) if f["code"] == "MS2010"]
    assert len(findings) == 1
    f = findings[0]
    assert (f["resource"]["kind"], f["resource"]["namespace"], f["resource"]["name"]) == (
        "DestinationRule", "bookinfo", "reviews")
    assert f["resource"]["path"] == "spec/trafficPolicy/tls/mode"
    assert f["resource"]["source"].startswith(str(tmp_path / "mesh.yaml") + ":")
    assert [(r["kind"], r["name"]) for r in f["related"]] == [("PeerAuthentication", "reviews-strict")]
    assert f["severity"] == "error" and f["category"] == "mtls" and "ISTIO_MUTUAL" in f["remediation"]
