"""The real-world corpus: upstream Istio YAML nobody here wrote, with the findings istioctl reports.

One case per set of tests/corpus/realworld/sets.yaml: the set's files (as upstream ships them,
most without metadata.namespace) are loaded with the set's -n (default `default`) plus the
demo-profile install stand-in, analyzed, and every error/warning finding is compared, as a
multiset of "CODE Kind namespace/name", with the set's expectations: no finding that is not
expected (false positive), no expected finding missing. Info findings are tolerated, and listed.
A finding is named by its IST equivalent when it has one, else its KIA one, else its own code, so
schema findings match an expected IST0106 through their equivalents.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest
import yaml

from diagnose import analyze
from mesh.config import Snapshot, load_paths
from mesh.config.namespaces import DEFAULT_NAMESPACE

ROOT = Path(__file__).parent / "realworld"
SETS: dict = yaml.safe_load((ROOT / "sets.yaml").read_text())
INSTALL = ROOT / "implicit" / "istio-install.yaml"


def finding_key(f) -> str:
    """`CODE Kind ns/name` with the code istioctl (else Kiali, else meshscope) gives the finding."""
    codes = list(f.equivalents)
    code = next((c for c in codes if c.startswith("IST")), None) or next(
        (c for c in codes if c.startswith("KIA")), None) or f.code
    r = f.resource
    if r and r.kind == "File":  # a finding about a file names it by its path in the corpus, wherever the corpus is
        return f"{code} File {Path(r.name).resolve().relative_to((ROOT / 'files').resolve()).as_posix()}"
    return f"{code} {r.label()}" if r else code


def run_set(name: str) -> tuple[Counter, list[str]]:
    """(error/warning findings as a multiset of keys, info findings as lines) for one set."""
    entry = SETS[name]
    paths = [ROOT / "files" / f for f in entry["files"]] + [INSTALL]
    loaded = load_paths(paths, default_namespace=entry.get("namespace", DEFAULT_NAMESPACE))
    findings = analyze(Snapshot(loaded.objects), problems=[*loaded.problems, *loaded.skipped])
    serious = Counter(finding_key(f) for f in findings if f.severity in ("error", "warning"))
    infos = [f"{finding_key(f)}: {f.message}" for f in findings if f.severity == "info"]
    return serious, infos


@pytest.mark.parametrize("name", list(SETS))
def test_set(name):
    expected = Counter(e["finding"] for e in SETS[name]["expected"])
    actual, infos = run_set(name)
    for line in infos:
        print(f"{name}: tolerated info {line}")
    false_positives = actual - expected
    missed = expected - actual
    assert not false_positives and not missed, (
        f"false positives: {sorted(false_positives.elements())}; missed: {sorted(missed.elements())}")


def test_corpus_size_and_sources():
    """At least 40 sets; every file is recorded in sources.yaml with repo, path, commit and licence."""
    assert len(SETS) >= 40
    sources = {s["file"]: s for s in yaml.safe_load((ROOT / "sources.yaml").read_text())}
    used = {f for e in SETS.values() for f in e["files"]}
    on_disk = {p.relative_to(ROOT / "files").as_posix() for p in (ROOT / "files").rglob("*") if p.is_file()}
    folders = {f for f in used if (ROOT / "files" / f).is_dir()}  # walked as `meshscope analyze DIR` walks it
    assert used - folders <= on_disk, f"sets name missing files: {sorted(used - folders - on_disk)}"
    assert on_disk <= set(sources), f"files without a source entry: {sorted(on_disk - set(sources))}"
    for s in sources.values():
        assert s["repo"] and s["path"] and len(s["commit"]) == 40 and s["licence"], s


def test_files_are_unchanged_from_upstream():
    """Each file's git blob id is the one recorded (upstream's own id for `commit:path`): nobody edited it,
    not even to add a namespace."""
    for s in yaml.safe_load((ROOT / "sources.yaml").read_text()):
        data = (ROOT / "files" / s["file"]).read_bytes()
        assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == s["blob"], s["file"]


def test_the_cli_agrees_on_a_set_applied_with_n():
    """`meshscope analyze -n tutorial FILES` as a user types it (the CLI assumes the ingress gateway itself)."""
    import json
    import subprocess
    import sys
    entry = SETS["istio-tutorial-fault-503"]
    r = subprocess.run([sys.executable, "-m", "meshscope", "analyze", "-n", entry["namespace"], "--format", "json",
                        *[str(ROOT / "files" / f) for f in entry["files"]]],
                       capture_output=True, text=True, cwd=ROOT.parents[2], timeout=120)
    assert r.returncode == 0, r.stderr  # a warning only
    serious = [f for f in json.loads(r.stdout) if f["severity"] != "info"]
    assert [(f["equivalents"][0], f["resource"]["kind"], f["resource"]["namespace"], f["resource"]["name"])
            for f in serious] == [("IST0130", "VirtualService", "tutorial", "recommendation")]


KUSTOMIZE_TREES = sorted({p.parent.relative_to(ROOT / "files").parts[:2] for p in (ROOT / "files").rglob("kustomization.y*ml")})


@pytest.mark.parametrize("tree", ["/".join(t) for t in KUSTOMIZE_TREES])
def test_a_kustomize_tree_as_kept_upstream_loads_without_input_problems(tree):
    """Each kustomize tree of the corpus, walked as a folder: every file gives objects or is skipped as no object
    (info MS0024: kustomizations, their patches and params), none is reported as broken or defined twice (the
    kubeflow sidecar patch, a partial Deployment named as its base, was a second definition of it)."""
    from mesh.config.loader import NOT_AN_OBJECT

    root = ROOT / "files" / tree
    loaded = load_paths([root])
    assert loaded.problems == []
    keys = [o.key for o in loaded.objects]
    assert len(keys) == len(set(keys))
    skipped = {Path(p.file) for p in loaded.skipped}
    assert set(root.rglob("kustomization.y*ml")) <= skipped and {p.reason for p in loaded.skipped} == {NOT_AN_OBJECT}
    assert set(root.rglob("*.y*ml")) == {Path(o.source.file) for o in loaded.objects} | skipped
    found = analyze(Snapshot(loaded.objects), problems=[*loaded.problems, *loaded.skipped])
    inputs = [f for f in found if f.code.startswith("MS00") and f.severity != "info"]
    assert inputs == [], [str(f) for f in inputs]
    assert {f.code for f in found if f.resource and f.resource.kind == "File"} <= {"MS0024"}
