"""`meshscope analyze --impact` and `apply --dry-run` as a user runs them, against a real meshscope API."""
from __future__ import annotations

import contextlib
import io
import json
from types import SimpleNamespace

import pytest

from dashboard.server import start
from tests.dashboard.test_api_impact import STRICT, LiveLike, _Backend
from tests.diagnose.whatif.test_replay import _window


@pytest.fixture(scope="module")
def url():
    ui = start(LiveLike(_Backend(_window())), port=0)
    yield ui.url
    ui.stop()


def _cli(*args: str) -> SimpleNamespace:
    """The CLI's entry point in this process (a subprocess per case costs seconds of import)."""
    from meshscope.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(list(args))
        except SystemExit as exc:  # argparse usage errors
            rc = exc.code
    return SimpleNamespace(returncode=rc, stdout=out.getvalue(), stderr=err.getvalue())


def test_exit_codes_follow_the_bar(url, tmp_path):
    f = tmp_path / "strict.yaml"
    f.write_text(STRICT)
    r = _cli("analyze", "--impact", str(f), "--from", url, "--window", "15m")
    assert r.returncode == 1, r.stderr
    assert "MS5001 legacy/curl -> bookinfo/details-v1" in r.stdout and "BREAKS" in r.stdout
    r = _cli("analyze", "--impact", str(f), "--from", url, "--max-broken-rps", "5", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["broken_rps"] == pytest.approx(1.5)
    r = _cli("apply", "--dry-run", "-f", str(f), "--from", url)
    assert r.returncode == 1 and "MS5001" in r.stdout


def test_bad_input_and_usage(url, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: x}\n"
                   "spec: {mtls: {mode: STRIKT}}\n")
    r = _cli("analyze", "--impact", str(bad), "--from", url)
    assert r.returncode == 1 and "does not load" in r.stdout and "spec.mtls.mode" in r.stdout
    assert _cli("analyze", "--impact", str(bad), "--from", url, "--window", "soon").returncode == 2
    assert _cli("analyze", "--impact", str(bad), "--from", "http://127.0.0.1:9").returncode == 2
    assert _cli("analyze", "--impact", str(bad), "--prometheus", "http://127.0.0.1:9").returncode == 2
