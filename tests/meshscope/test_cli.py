"""The command line contract: help works, usage errors exit 2."""
import subprocess
import sys

from meshscope.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    try:
        main(["--help"])
    except SystemExit as e:
        assert e.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_is_usage_error():
    r = subprocess.run([sys.executable, "-m", "meshscope", "no-such-command"], capture_output=True, text=True)
    assert r.returncode == 2
    assert "invalid choice" in r.stderr
