"""Untrusted text (names from config, telemetry, a cluster's answers) in every kind of output meshscope writes for
a person: CLI lines of each command, log lines (and a logged traceback), alert bodies, text reports.

Each is fed the same hostile strings: an ANSI escape that clears the screen, a newline starting a line a CI runner
reads as a workflow command, a C1 CSI, a bidi override. Before, `meshscope up` and `serve` printed them raw, `up`
logged through Python's last-resort handler, a traceback's message and a Slack summary kept their newlines, and the
Markdown and JSON reports kept the escapes. Each must show them as visible escapes and keep its own lines.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from diagnose.terminal_text import SafeFormatter

HOSTILE = "evil\x1b[2J\n::error file=x.yaml::forged\x9b31m\u202etxt"
UNSAFE = set("\x1b\x9b\u202e\r")


def _assert_clean(text: str, lines: int | None = None) -> None:
    assert not set(text) & UNSAFE, repr(text)
    assert not any(ln.lstrip().startswith("::") for ln in text.splitlines()), repr(text)
    assert "\\x1b[2J\\n::error" in text, repr(text)  # shown, not dropped
    if lines is not None:
        assert text.count("\n") == lines, repr(text)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "meshscope.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def main(monkeypatch, capsys):
    """The CLI in this process (a subprocess costs ~12 s of imports here); the process-wide malloc tuning of `up` and
    `serve` is left out, since it would apply to the whole test session."""
    from meshscope import cli, memory

    monkeypatch.setattr(memory, "tune", lambda: {})

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_up_names_a_hostile_missing_file_in_one_safe_line(tmp_path, main):
    code, out, _ = main("up", "--data-dir", str(tmp_path / "d"), "-f", str(tmp_path / HOSTILE))
    assert code == 2
    _assert_clean(out, lines=1)


def test_up_findings_line_escapes_before_it_cuts():
    from diagnose.findings import Finding
    from meshscope.commands.up import _findings_line

    f = Finding(code="MS1001", severity="error", category="route", message=HOSTILE)
    line = _findings_line([f])
    _assert_clean(line + "\n", lines=1)


@pytest.mark.parametrize("flag", ["--slo", "--alerts", "--mesh-config"])
def test_serve_names_a_hostile_missing_file_in_one_safe_line(tmp_path, main, flag):
    code, _, err = main("serve", "--prometheus", "http://127.0.0.1:9", "--data-dir", str(tmp_path / "d"), flag,
                        str(tmp_path / HOSTILE))
    assert code == 2
    _assert_clean(err, lines=1)


def test_serve_shows_an_api_servers_hostile_error_as_text(tmp_path, kube_api):
    """The cluster's own answer (a Status message) is quoted when it cannot be read: one safe line."""
    kube_api.failures.append((lambda path: path.startswith("/api/v1/namespaces"), 500,
                              {"kind": "Status", "code": 500, "message": HOSTILE}))
    r = _cli("serve", "--kubeconfig", str(kube_api.kubeconfig(tmp_path)), "--prometheus", "http://127.0.0.1:9",
             "--port", "0", "--otlp-port", "0", "--otlp-grpc-port", "-1", "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 1, r.stderr
    assert "cannot read the cluster" in r.stderr
    _assert_clean(r.stderr)
    assert not any(ln.lstrip().startswith("::") for ln in (r.stdout + r.stderr).splitlines())


def test_apply_lists_problems_of_a_hostile_file_safely(tmp_path, main):
    """Validation problems quote the file's values and name; printed before the mesh is contacted."""
    name = "vs\x1b[2J.yaml"
    (tmp_path / name).write_text('apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n'
                                 '  name: r\n  namespace: default\nspec:\n  hosts: ["a"]\n  http:\n'
                                 '  - timeout: "evil\\e[2J\\n::error file=x.yaml::forged\\x9b31m\\u202etxt"\n'
                                 '    route: [{destination: {host: a}}]\n')
    code, out, _ = main("apply", "-f", str(tmp_path / name), "--control", "http://127.0.0.1:9")
    assert code == 1
    assert "refused, the files have problems" in out, out
    _assert_clean(out)


@pytest.fixture
def root_logging():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


@pytest.mark.parametrize("command", ["up", "serve"])
def test_log_lines_and_tracebacks_cannot_be_forged(capfd, root_logging, command):
    """Both long-running commands log through the safe formatter; a traceback keeps its frames' lines, but the
    exception's message (which quotes a request, a span, a server's answer) is escaped like the message."""
    if command == "up":
        from meshscope.commands.up import _setup_logging
        _setup_logging()
    else:
        from meshscope.commands.serve import _setup_logging
        _setup_logging(False)
    capfd.readouterr()
    logging.getLogger("waitress").warning("request for %s failed", "/" + HOSTILE)
    err = capfd.readouterr().err
    _assert_clean(err, lines=1)
    try:
        raise ValueError(HOSTILE)
    except ValueError:
        logging.getLogger("meshscope.test").exception("serving %s", "/x")
    err = capfd.readouterr().err
    _assert_clean(err)
    assert "Traceback (most recent call last):" in err and '  File "' in err  # its own lines stay lines
    assert err.rstrip("\n").splitlines()[-1].startswith("ValueError: evil\\x1b[2J\\n::error")


def test_safe_formatter_escapes_every_exception_of_a_chain():
    try:
        try:
            raise KeyError(HOSTILE)
        except KeyError as inner:
            raise RuntimeError("\n::error::second") from inner
    except RuntimeError:
        text = SafeFormatter().formatException(sys.exc_info())
    assert "direct cause" in text and "\n::" not in text and "\x1b" not in text


def _hostile_finding():
    from tests.diagnose.alerts.findings_data import route_finding

    return dataclasses.replace(route_finding(name="reviews\n::error::x"), message=HOSTILE,
                               remediation="fix " + HOSTILE)


@pytest.mark.parametrize("fmt", ["webhook", "slack", "alertmanager", "amwebhook"])
def test_alert_bodies_show_hostile_names_as_escapes(fmt):
    from diagnose.alerts import alertmanager, amwebhook, slack, webhook
    from diagnose.alerts.config import ReceiverConfig
    from tests.diagnose.alerts.test_payloads import notification

    rec = ReceiverConfig.for_format("r", "http://127.0.0.1:9/hook", fmt, group_wait=0)
    n = notification(rec, [_hostile_finding()])
    sink = {"webhook": webhook, "slack": slack, "alertmanager": alertmanager, "amwebhook": amwebhook}[fmt]
    body = json.loads(sink.render(n, rec, 1000.0).body)
    strings: list[str] = []

    def walk(v):  # the texts a receiver shows; identifiers (matched exactly) and the finding's raw record are data
        if isinstance(v, str):
            strings.append(v)
        elif isinstance(v, dict):
            [walk(x) for k, x in v.items() if k not in ("fingerprint", "finding")]
        elif isinstance(v, list):
            [walk(x) for x in v]

    walk(body)
    people = [s for s in strings if "evil" in s or "reviews" in s]  # what a chat, mail or log shows
    assert people
    for s in people:
        assert not set(s) & UNSAFE and "\n::" not in s, repr(s)
    assert any("\\x1b[2J\\n::error" in s for s in people)


@pytest.mark.parametrize("fmt", ["md", "json"])
def test_text_reports_show_hostile_names_as_escapes(fmt):
    from diagnose.reports import render
    from tests.diagnose.reports.sample import sample_snapshot

    snapshot = sample_snapshot()
    hostile = dataclasses.replace(snapshot, findings=[{**f, "message": HOSTILE} for f in snapshot.findings])
    text = render(hostile, fmt).decode()
    assert not set(text) & UNSAFE and "\n::" not in text
    if fmt == "json":  # the same data: the escapes are JSON's, the strings decode to what was sent
        assert {f["message"] for f in json.loads(text)["findings"]} == {HOSTILE}
    else:  # Markdown's own escaping made the newline a space and the bracket literal
        assert "evil\\x1b\\[2J ::error" in text and "\\u202etxt" in text


def test_impact_text_shows_hostile_messages_as_escapes():
    import io

    from meshscope.commands.impact import write_text

    out = io.StringIO()
    finding = {"severity": "error", "code": "MS5002", "message": HOSTILE,
               "resource": {"kind": "VirtualService", "namespace": "default", "name": "r\n::error::x", "path": ""}}
    write_text({"predicted": True, "deleted": [], "no_traffic": False, "edge_findings": [finding], "findings": [],
                "edges": 1, "total_rps": 1.0, "window_s": 60.0, "broken_rps": 1.0, "at_risk_rps": 1.0, "breaks": True,
                "max_broken_rps": 0.0}, out)
    _assert_clean(out.getvalue(), lines=2)


_UNSAFE_RE = __import__("re").compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
@settings(max_examples=300, deadline=None)
def test_any_text_escapes_to_one_inert_line_and_json_keeps_its_data(text):
    from diagnose.terminal_text import json_safe, terminal_safe

    shown = terminal_safe(text)
    assert not _UNSAFE_RE.search(shown)
    assert not _UNSAFE_RE.search(terminal_safe(text, keep_newlines=True).replace("\n", ""))
    if not _UNSAFE_RE.search(text) and "\\" not in text:
        assert shown == text  # printable text is unchanged
    encoded = json_safe(json.dumps({"v": text}, ensure_ascii=False, indent=1))
    assert not _UNSAFE_RE.search(encoded.replace("\n", "")) and json.loads(encoded) == {"v": text}
