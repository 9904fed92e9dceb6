"""Hostile config files: alias bombs, deep nesting and oversize files are refused in bounded time and memory.

Each case runs the real CLI (`meshscope analyze`) as a subprocess under an address-space cap
(RLIMIT_AS), so a loader that expands the input would die of MemoryError instead of passing.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from mesh.config import limits, load_text

MEMORY_CAP = 1536 * 1024 * 1024  # address space, not RSS: the interpreter with pandas/numpy maps ~1 GB
VALID = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: fine, namespace: default}
spec:
  hosts: [nosuch]
  http:
  - route:
    - destination: {host: nosuch}
"""


def alias_bomb(levels: int = 9, width: int = 9, flow: bool = True) -> str:
    """The "billion laughs" document: each level is `width` aliases of the one before."""
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: lol, namespace: default}", "data:"]
    lines.append("  l0: &l0 [" + ", ".join(['"lol"'] * width) + "]")
    for i in range(1, levels):
        if flow:
            lines.append(f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
        else:
            lines.append(f"  l{i}: &l{i}")
            lines.extend(f"    - *l{i - 1}" for _ in range(width))
    return "\n".join(lines) + "\n"


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def analyze(path: Path, env: dict[str, str] | None = None) -> tuple[list[dict], str]:
    proc = subprocess.run([sys.executable, "-m", "meshscope", "analyze", str(path), "--format", "json"],
                          capture_output=True, text=True, timeout=120, preexec_fn=_cap_memory,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1", **(env or {})})
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return json.loads(proc.stdout), proc.stderr


def codes_at(findings: list[dict], code: str) -> list[str]:
    return [f["resource"]["source"] for f in findings if f["code"] == code]


@pytest.mark.parametrize("flow", [True, False], ids=["flow", "block"])
def test_alias_bomb_is_refused_and_the_other_documents_still_analyzed(tmp_path, flow):
    f = tmp_path / "bomb.yaml"
    f.write_text(alias_bomb(flow=flow) + "---\n" + VALID)
    findings, _ = analyze(f)
    over = [x for x in findings if x["code"] == "MS0040"]
    assert len(over) == 1 and "alias" in over[0]["message"]
    src = over[0]["resource"]["source"]
    assert src.startswith(f"{f}:") and 1 <= int(src.rsplit(":", 1)[1]) <= alias_bomb(flow=flow).count("\n")
    # the valid document after the bomb is analyzed as usual (its host matches nothing)
    assert [x["resource"]["name"] for x in findings if x["code"] == "MS1001"] == ["fine"]


def test_alias_budget_scales_with_the_bomb_not_the_limit():
    """Every bomb shape past the budget is refused (not only nine levels of nine); small reuse still loads."""
    for levels, width in ((4, 100), (6, 10), (20, 2), (3, 400)):
        res = load_text(alias_bomb(levels, width), "b.yaml")
        assert [p.reason for p in res.problems] == [limits.OVER_LIMIT], (levels, width)
    ok = load_text(alias_bomb(3, 9), "small.yaml")  # 729 nodes: anchors used the way manifests use them
    assert not ok.problems and len(ok.objects[0].raw["data"]["l2"]) == 9


def test_merge_key_bombs_count_too():
    doc = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: m}", "data:",
           "  l0: &l0 {" + ", ".join(f"k{i}: v" for i in range(10)) + "}"]
    for i in range(1, 8):
        doc.append(f"  l{i}: &l{i} {{" + ", ".join(f"m{j}: *l{i - 1}" for j in range(10)) + "}")
    res = load_text("\n".join(doc) + "\n", "merge.yaml")
    assert [p.reason for p in res.problems] == [limits.OVER_LIMIT]


def test_deep_nesting_is_refused_with_its_line(tmp_path):
    depth = limits.MAX_DEPTH + 20
    block = "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "leaf\n"
    f = tmp_path / "deep.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata:\n" + "".join(
        "  " * (i + 1) + f"k{i}:\n" for i in range(depth)) + "  " * (depth + 1) + "leaf\n---\n" + VALID)
    findings, _ = analyze(f)
    over = [x for x in findings if x["code"] == "MS0040"]
    assert len(over) == 1 and "deeper than" in over[0]["message"]
    assert int(over[0]["resource"]["source"].rsplit(":", 1)[1]) > limits.MAX_DEPTH
    assert codes_at(findings, "MS1001")  # the document after it still analyzed
    assert [p.reason for p in load_text(block, "d.yaml").problems] == [limits.OVER_LIMIT]


def test_deep_json_in_a_folder_walk_is_no_traceback(tmp_path):
    (tmp_path / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    (tmp_path / "vs.yaml").write_text(VALID)
    findings, _ = analyze(tmp_path)
    assert codes_at(findings, "MS1001")
    assert any(x["code"] in ("MS0002", "MS0040") and "deep.json" in x["resource"]["source"] for x in findings)


def test_oversize_file_is_refused_unread(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text(VALID + "---\n" + "# padding\n" * 2000)
    (tmp_path / "ok.yaml").write_text(VALID.replace("name: fine", "name: other"))
    findings, _ = analyze(tmp_path, env={"MESHSCOPE_MAX_INPUT_BYTES": "4096"})
    over = [x for x in findings if x["code"] == "MS0040"]
    assert len(over) == 1 and over[0]["resource"]["name"].endswith("big.yaml")
    assert "4 KiB" in over[0]["message"] and "MESHSCOPE_MAX_INPUT_BYTES" in over[0]["message"]
    assert [x["resource"]["name"] for x in findings if x["code"] == "MS1001"] == ["other"]


def test_limits_are_configurable_for_trusted_input(monkeypatch):
    text = alias_bomb(5, 9)  # 59k nodes: over a 10k budget, within the default
    assert not load_text(text, "t.yaml").problems
    monkeypatch.setenv("MESHSCOPE_MAX_ALIAS_NODES", "10000")
    assert [p.reason for p in load_text(text, "t.yaml").problems] == [limits.OVER_LIMIT]
