"""`meshscope slo export`: SLO files (meshscope, Sloth, OpenSLO, Pyrra, Alibaba Cloud ASM) as ASM objects or rules.

So a team can move either way: ASM ServiceLevelObjectives are read by `--slo` like
any other SLO file; this writes meshscope's (or any imported) SLOs back as ASM
`ServiceLevelObjective` objects, or as the `PrometheusRule` ASM would generate.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from diagnose.terminal_text import say  # lines quote files, names and servers' answers: shown, never obeyed

HELP = "export SLO files as Alibaba Cloud ASM ServiceLevelObjectives or the PrometheusRule ASM generates"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["export"], help="export: write the SLOs in another format")
    parser.add_argument("paths", nargs="+", type=Path, metavar="FILE|DIR", help="SLO files or folders")
    parser.add_argument("--to", choices=["asm", "asm-prometheusrule"], default="asm",
                        help="asm: ServiceLevelObjective objects (istio.alibabacloud.com/v1); "
                             "asm-prometheusrule: the PrometheusRule ASM generates from them")
    parser.add_argument("--rule-namespace", default="monitoring", help="namespace of the PrometheusRule")


def run(args: argparse.Namespace) -> int:
    import yaml

    from diagnose.slo import load_slos
    from diagnose.slo.asm import exportable, to_asm_objects, to_prometheus_rule

    loaded = load_slos(args.paths)
    for p in loaded.problems:  # bad SLOs are named and skipped; the others are still exported
        say(f"meshscope slo: {p}", file=sys.stderr)
    if args.to == "asm":
        docs, skipped = to_asm_objects(loaded.slos)
    else:
        ok = [s for s in loaded.slos if exportable(s) is None]
        skipped = [exportable(s) for s in loaded.slos if exportable(s) is not None]
        docs = [to_prometheus_rule(ok, namespace=args.rule_namespace)] if ok else []
    for why in skipped:
        say(f"meshscope slo: skipped {why}", file=sys.stderr)
    if docs:
        sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False))
    return 1 if loaded.problems or not docs else 0
