"""`meshscope delete -f FILE|DIR`: remove the named objects from the running bundled mesh's config."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "delete the objects named in Istio config files from the running bundled mesh"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--filename", action="append", type=Path, required=True, metavar="FILE|DIR",
                        help="YAML file or directory naming the objects (repeatable)")
    from meshscope.commands.apply import add_control_arguments
    add_control_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from meshscope.commands.apply import as_yaml, control_client, load_change, print_push
    from mesh.control_api import ControlError

    change = load_change(args.filename, "delete")
    if change is None:
        return 1
    try:
        r = control_client(args).delete(as_yaml(change), ",".join(map(str, args.filename)))
    except ControlError as exc:
        print(f"meshscope delete: {exc}")
        for p in exc.problems:
            print(f"  {p}")
        return 1
    print_push(r, "deleted")
    return 0
