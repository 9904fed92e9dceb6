"""`meshscope scenario list|apply NAME|clear`: fault scenarios on the running bundled mesh."""
from __future__ import annotations

import argparse

from diagnose.terminal_text import say  # lines quote files, names and servers' answers: shown, never obeyed

HELP = "list the fault scenarios, apply one to the running bundled mesh, or clear it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["list", "apply", "clear"], help="what to do")
    parser.add_argument("name", nargs="?", help="scenario name (for apply)")
    from meshscope.commands.apply import add_control_arguments
    add_control_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from mesh.control_api import ControlError
    from mesh.scenarios import SCENARIOS, names
    from meshscope.commands.apply import control_client

    if args.action == "list":
        active = None
        try:
            active = control_client(args, timeout=2).scenarios().get("active")
        except ControlError:
            pass  # no mesh running: still list them
        width = max(len(s.name) for s in SCENARIOS)
        for s in SCENARIOS:
            mark = "*" if s.name == active else " "
            flags = ",".join(s.expected_flags) or "-"
            say(f"{mark} {s.name:<{width}}  {s.description}")
            say(f"  {'':<{width}}  expects {', '.join(s.expected_codes)}; flags {flags}; edge {s.edge[0]} -> {s.edge[1]}")
        return 0
    client = control_client(args)
    try:
        if args.action == "apply":
            if not args.name:
                say("meshscope scenario apply: which scenario? one of: " + ", ".join(names()))
                return 2
            if args.name not in names():
                say(f"meshscope scenario apply: unknown scenario {args.name!r}; known: {', '.join(names())}")
                return 2
            r = client.apply_scenario(args.name)
            sc = next(s for s in SCENARIOS if s.name == args.name)
            say(f"scenario {args.name} applied in {r['seconds']:.3f}s: {', '.join(r['changed']) or 'app behavior only'}")
            flags = ", ".join(sc.expected_flags) or "no response flag"
            say(f"  expect {flags} on {sc.edge[0]} -> {sc.edge[1]}; findings {', '.join(sc.expected_codes)}")
            for w in r.get("warnings") or []:
                say(f"  warning: {w}")
        else:
            r = client.clear_scenario()
            say(f"scenario cleared in {r['seconds']:.3f}s: the mesh is back to its baseline")
    except ControlError as exc:
        say(f"meshscope scenario: {exc}")
        for p in exc.problems:
            say(f"  {p}")
        return 1
    return 0
