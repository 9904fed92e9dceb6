"""`meshscope analyze` on a folder where most files are broken, each a different way.

Every broken file gets a finding naming file and line (and the field, where there is one);
the valid file is still analyzed; there is never a traceback; exit codes are the documented
ones (1: an error finding, 2: a usage error such as a missing path).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

FILES = {
    "good.yaml": b"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: good}\n"
                 b"spec: {host: nowhere}\n",
    "binary.yaml": b"apiVersion: v1\nkind: Service\nmetadata: {name: \xff\xfe}\n",
    "tabs.yaml": b"apiVersion: v1\nkind: Service\nmetadata:\n\tname: t\n",
    "nokind.yaml": b"apiVersion: v1\nmetadata: {name: nokind}\n",
    "fields.yaml": b"apiVersion: v1\nkind: Service\nmetadata: {name: s, labels: {version: 1}}\nspec: [1]\n",
    "list.yaml": b"apiVersion: v1\nkind: List\nitems: {a: 1}\n",
    "broken.json": b'{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},,}',
    "empty.yaml": b"",
    "dup.yaml": b"apiVersion: v1\nkind: Service\nmetadata: {name: dup}\nspec:\n  ports: []\n  ports: []\n",
}

# file -> (line, words the message must contain)
EXPECTED = {
    "binary.yaml": (3, "UTF-8"),
    "tabs.yaml": (4, "tab"),
    "nokind.yaml": (1, "no kind"),
    "list.yaml": (3, "items"),
    "broken.json": (1, "not valid"),
    "dup.yaml": (6, "spec.ports"),
}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "meshscope", "analyze", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_each_broken_file_is_named_with_its_line_and_the_good_one_is_still_analyzed(tmp_path):
    for name, data in FILES.items():
        (tmp_path / name).write_bytes(data)
    r = _run(str(tmp_path), "--format", "json")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    findings = json.loads(r.stdout)
    by_file: dict[str, list] = {}
    for f in findings:
        file, _, line = f["resource"]["source"].rpartition(":")
        by_file.setdefault(Path(file).name, []).append((int(line), f))
    for name, (line, words) in EXPECTED.items():
        assert any(ln == line and words in f["message"] for ln, f in by_file.get(name, [])), (name, by_file.get(name))
    fields = {(ln, f["resource"].get("path")) for ln, f in by_file["fields.yaml"]}
    assert (3, "metadata/labels/version") in fields and (4, "spec") in fields
    assert [f["resource"]["name"] for _, f in by_file["good.yaml"]] == ["good"]  # analyzed despite the rest
    assert "empty.yaml" not in by_file  # an empty file is valid and holds nothing


def test_text_output_never_loses_a_file_and_missing_paths_are_usage_errors(tmp_path):
    for name, data in FILES.items():
        (tmp_path / name).write_bytes(data)
    r = _run(str(tmp_path))
    assert r.returncode == 1 and "Traceback" not in r.stderr + r.stdout
    for name, (line, _) in EXPECTED.items():
        assert f"{tmp_path / name}:{line}" in r.stdout, name
    missing = _run(str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
