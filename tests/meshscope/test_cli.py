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


def test_a_reader_closing_the_pipe_early_ends_quietly():
    """`meshscope analyze --format json | head`: the JSON (~440 kB here) outgrows the pipe, the reader leaves."""
    from pathlib import Path

    corpus = Path(__file__).resolve().parents[1] / "corpus" / "realworld" / "files"
    proc = subprocess.Popen([sys.executable, "-m", "meshscope.cli", "analyze", "--format", "json", str(corpus)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.read(100).lstrip().startswith(b"[")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err
