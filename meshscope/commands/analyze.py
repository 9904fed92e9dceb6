"""`meshscope analyze` (not yet available)."""
from __future__ import annotations

import argparse

HELP = "analyze (not yet available)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    print("meshscope analyze: not yet available")
    return 0
