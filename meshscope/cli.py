"""The `meshscope` command line.

Each subcommand lives in `meshscope/commands/<name>.py` and exposes `HELP`,
`add_arguments(parser)` and `run(args) -> int`. Command modules import heavy
packages only inside `run`, so `meshscope --help` stays instant.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from meshscope import __version__

# name -> module; the order is the order `meshscope --help` lists them.
COMMANDS = {
    "up": "meshscope.commands.up",
    "analyze": "meshscope.commands.analyze",
    "apply": "meshscope.commands.apply",
    "delete": "meshscope.commands.delete",
    "scenario": "meshscope.commands.scenario",
    "report": "meshscope.commands.report",
    "slo": "meshscope.commands.slo",
    "serve": "meshscope.commands.serve",
}


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors, which is the contract; keep its message short."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="meshscope",
        description="Observability and diagnostics for Istio-compatible service meshes.",
    )
    parser.add_argument("--version", action="version", version=f"meshscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _reader_went_away()


def _reader_went_away() -> int:
    """`meshscope analyze --format json | head`: the reader closed the pipe, which is not an error of ours.

    Whatever is still buffered for stdout can never be written; point stdout at /dev/null so the interpreter's
    final flush does not raise (and print a traceback) again, and exit as a process killed by SIGPIPE would."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 128 + 13


if __name__ == "__main__":
    sys.exit(main())
