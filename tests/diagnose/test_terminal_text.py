"""`meshscope analyze` on a hostile pull request's YAML: what it prints cannot drive the terminal or the CI log.

YAML strings may hold any character. Before, a host of `"evil\\e[31m...\\n::error file=x::forged"` was printed
raw: an ANSI escape and a line of its own a CI runner reads as a workflow command.
"""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from diagnose.terminal_text import terminal_safe

HOSTILE = ["\x1b[2J\x1b[31m", "\n::error file=x.yaml::forged", "\r", "\x9b31m", "\u202etxt.exe", "\u2028", "\x00", "\x07"]
UNSAFE = set("\x1b\n\r\x9b\u202e\u2028\x00\x07")


def _yaml(tmp_path) -> str:
    docs = []
    for i, bad in enumerate(HOSTILE):
        host = "evil" + bad.encode("unicode_escape").decode().replace('"', '\\"')  # a YAML double-quoted escape
        docs.append(f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: r{i}
  namespace: default
spec:
  hosts: ["ok{i}"]
  http:
  - route:
    - destination:
        host: "{host}"
""")
    path = tmp_path / "pr.yaml"
    path.write_text("---\n".join(docs))
    return str(path)


@pytest.mark.parametrize("args", [[], ["--color", "always", "-v"]])
def test_analyze_prints_hostile_strings_as_visible_escapes(tmp_path, args):
    out = subprocess.run([sys.executable, "-m", "meshscope.cli", "analyze", *args, _yaml(tmp_path)],
                         capture_output=True, text=True, timeout=120).stdout
    lines = out.splitlines()
    assert sum("MS1001" in ln for ln in lines) == len(HOSTILE)  # every finding still printed, one line each
    for line in lines:
        own = re.sub(r"\x1b\[[0-9;]*m", "", line) if args else line  # the CLI's own colours (SGR) are fine
        assert not own.lstrip().startswith("::") and not set(own) & UNSAFE, repr(line)
    assert "\\x1b[2J" in out and "\\n::error" in out and "\\u202e" in out  # shown as visible escapes


def test_printable_text_is_unchanged():
    text = "VirtualService bookinfo/reviews: 90 % → v2, ñ, 日本"
    assert terminal_safe(text) == text
    assert terminal_safe("a\tb\x7f") == "a\\tb\\x7f"


def test_serve_log_lines_cannot_be_forged(capfd):
    """A logged value (a scrape target's error text, an API server's answer) cannot add a line or repaint."""
    import logging

    from meshscope.commands.serve import _setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        _setup_logging(False)
        logging.getLogger("meshscope.test").warning("scrape of %s failed: %s", "http://127.0.0.1:15090",
                                                    "bad\n  [00:00:00] ERROR meshscope: forged\x1b[2J")
        err = capfd.readouterr().err
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert err.count("\n") == 1 and "\x1b" not in err and "\\n  [00:00:00] ERROR meshscope: forged\\x1b[2J" in err
