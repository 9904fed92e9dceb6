"""`python -m dashboard` refuses bad input with a clear message and exit code, never a traceback."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MESHSCOPE_TOKEN"}
    return subprocess.run([sys.executable, "-m", "dashboard", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env)


def test_bad_snapshot_names_the_file_and_line(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text("{\n  oops\n}")
    r = _run("--snapshot", str(bad), "--port", "0")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{bad}:2:" in r.stderr and "not valid JSON" in r.stderr


def test_public_bind_without_token_is_refused(tmp_path):
    r = _run("--sample", "bookinfo", "--host", "0.0.0.0", "--port", "0")
    assert r.returncode == 2 and "pass a token" in r.stderr and "Traceback" not in r.stderr


def test_serves_a_saved_report_until_interrupted(tmp_path):
    import signal

    import httpx

    from dashboard.sample import bookinfo_snapshot
    from dashboard.snapshot_source import SnapshotSource
    from tests.util import free_port, wait_until

    saved = tmp_path / "report.json"
    saved.write_bytes(SnapshotSource(bookinfo_snapshot()).report("json")[0])
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MESHSCOPE_TOKEN"}
    proc = subprocess.Popen([sys.executable, "-m", "dashboard", "--snapshot", str(saved), "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(url + "/healthz").status_code == 200, 60, what="UI up")
        codes = {f["code"] for f in httpx.get(url + "/api/v1/findings").json()}
        assert {"MS2001", "MS3002"} <= codes
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)  # a loaded machine exits slowly
    assert proc.returncode == 0 and f"meshscope UI on {url}" in out and "Traceback" not in err
