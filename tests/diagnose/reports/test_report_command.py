"""`meshscope report`: from a saved snapshot, from a running meshscope over HTTP, and clear errors otherwise."""
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from diagnose.reports import render, save_snapshot

from tests.diagnose.reports.sample import sample_snapshot
from tests.util import free_port, wait_until

REPO = Path(__file__).resolve().parents[3]
TOKEN = "s3cret-token"


def meshscope(*args, timeout=120, env=None):
    import os

    return subprocess.run([sys.executable, "-m", "meshscope", "report", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("snap") / "snapshot.json"
    save_snapshot(sample_snapshot(), path)
    return path


@pytest.fixture
def api_server(tmp_path):
    """A separate process answering GET /api/v1/report?format=json (token required), like a running meshscope."""
    report = tmp_path / "report.json"
    report.write_bytes(render(sample_snapshot(), "json"))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.diagnose.reports.api_server", "--port", str(port),
                             "--report", str(report), "--token", TOKEN], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(url + "/api/v1/report", timeout=1).status_code == 401, timeout=60,
                   what="api server")
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=30)


@pytest.mark.parametrize("fmt,check", [
    ("md", lambda b: b.startswith(b"# meshscope diagnostic report")),
    ("html", lambda b: b.startswith(b"<!DOCTYPE html>") and b"MS3002" in b),
    ("json", lambda b: json.loads(b)["schema"] == "meshscope.report/v1"),
    ("pdf", lambda b: b.startswith(b"%PDF-")),
])
def test_from_saved_snapshot_every_format(tmp_path, saved, fmt, check):
    out = tmp_path / f"report.{fmt}"
    r = meshscope("--snapshot", str(saved), "--format", fmt, "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert check(out.read_bytes())
    assert f"wrote {out}" in r.stderr


def test_format_follows_the_file_extension_and_stdout_works(tmp_path, saved):
    r = meshscope("--snapshot", str(saved), "-o", str(tmp_path / "x.md"))
    assert r.returncode == 0 and (tmp_path / "x.md").read_text().startswith("# meshscope")
    r = meshscope("--snapshot", str(saved), "--format", "json", "-o", "-")
    assert r.returncode == 0 and json.loads(r.stdout)["findings"][0]["code"] == "MS3002"


def test_from_running_meshscope_with_its_token(tmp_path, api_server):
    out = tmp_path / "live.html"
    r = meshscope("--from", api_server, "--token", TOKEN, "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "ratings-availability" in out.read_text()
    assert f"from {api_server}" in r.stderr
    r = meshscope("--from", api_server, "-o", str(tmp_path / "env.md"), env={"MESHSCOPE_TOKEN": TOKEN})
    assert r.returncode == 0 and (tmp_path / "env.md").exists()
    r = meshscope("--from", api_server, "-o", str(tmp_path / "denied.md"), env={"MESHSCOPE_TOKEN": ""})
    assert r.returncode == 1 and "--token" in r.stderr and not (tmp_path / "denied.md").exists()


def test_errors_are_clear_and_not_tracebacks(tmp_path, saved):
    bad = tmp_path / "bad.json"
    d = json.loads(saved.read_text())
    del d["window"]
    bad.write_text(json.dumps(d))
    r = meshscope("--snapshot", str(bad), "-o", str(tmp_path / "o.md"))
    assert r.returncode == 1 and "missing field window" in r.stderr and str(bad) in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "o.md").exists()
    d["window"] = {"start": 0, "end": 60}
    d["findings"][0]["severity"] = "fatal"
    bad.write_text(json.dumps(d))
    r = meshscope("--snapshot", str(bad), "-o", str(tmp_path / "o.md"))
    assert r.returncode == 0 and "findings[0].severity must be one of" in r.stderr  # skipped, the rest rendered
    assert "## Findings, ranked by impact (6)" in (tmp_path / "o.md").read_text()
    r = meshscope("--from", f"http://127.0.0.1:{free_port()}", "-o", str(tmp_path / "o.md"), "--timeout", "3")
    assert r.returncode == 1 and "cannot reach meshscope" in r.stderr and "Traceback" not in r.stderr
    r = meshscope("--snapshot", str(saved), "--format", "pdf", "-o", "-")
    assert r.returncode == 2
    r = meshscope("--snapshot", str(saved), "--format", "docx", "-o", "x")
    assert r.returncode == 2 and "invalid choice" in r.stderr
