"""`meshscope delete -f FILE|DIR`: remove the named objects from the running bundled mesh's config."""
from __future__ import annotations

import argparse
from pathlib import Path

from diagnose.terminal_text import say  # lines quote files, names and servers' answers: shown, never obeyed

HELP = "delete the objects named in Istio config files from the running bundled mesh"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--filename", action="append", type=Path, required=True, metavar="FILE|DIR",
                        help="YAML file or directory naming the objects (repeatable)")
    from meshscope.commands.apply import add_control_arguments, add_dry_run_arguments
    add_control_arguments(parser)
    parser.add_argument("-n", "--namespace", metavar="NS", help="namespace of objects that set none (default: default)")
    add_dry_run_arguments(parser, "delete nothing: predict what deleting the objects would break", "--delete")


def run(args: argparse.Namespace) -> int:
    from meshscope.commands.apply import as_yaml, control_client, load_change, print_push
    from mesh.control_api import ControlError

    change = load_change(args.filename, "delete", getattr(args, "namespace", None))
    if change is None:
        return 1
    if getattr(args, "dry_run", False):  # predict only: the objects' absence replayed on the window's traffic
        from meshscope.commands import impact
        args.token = None  # the control API's token is not the UI's
        return impact.run(args, [], delete=[{"kind": o.kind, "apiVersion": o.api_version, "namespace": o.namespace,
                                             "name": o.name} for o in change])
    try:
        r = control_client(args).delete(as_yaml(change), ",".join(map(str, args.filename)))
    except ControlError as exc:
        say(f"meshscope delete: {exc}")
        for p in exc.problems:
            say(f"  {p}")
        return 1
    print_push(r, "deleted")
    return 0
