"""`meshscope analyze`: offline diagnosis of Istio and Kubernetes YAML files or folders.

Exit status: 0 when no finding reaches `--fail-on` (default error), 1 when one
does, 2 on a usage error (bad option, missing path, unusable mesh config).
Objects in the files without `metadata.namespace` are analyzed in the default
namespace, as kubectl would create them: `-n`, else the kubeconfig context's
namespace (with --kubeconfig/--context), else `default`.
`--format json` prints one JSON array of findings on stdout and nothing else.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from typing import Any, TextIO

from diagnose.terminal_text import say, terminal_safe

HELP = "find problems in Istio/Kubernetes config files (VirtualService, DestinationRule, mTLS, ...)"
LEVELS = ("error", "warning", "info")
_COLORS = {"error": "\033[31m", "warning": "\033[33m", "info": "\033[36m"}
_DIM, _BOLD, _RESET = "\033[2m", "\033[1m", "\033[0m"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="YAML/JSON files or folders (searched recursively for *.yaml, *.yml, *.json); "
                             "- reads standard input")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text: one line per finding (default); json: one JSON array of findings on stdout")
    parser.add_argument("--fail-on", choices=LEVELS, default="error",
                        help="exit 1 when a finding of this severity or worse remains (default: error)")
    parser.add_argument("--ignore", action="append", default=[], metavar="CODE",
                        help="ignore findings with this code (MS..., or an IST/KIA equivalent); repeatable or "
                             "comma-separated")
    parser.add_argument("--suppressions", metavar="FILE",
                        help="YAML list of suppressions (codes, resource glob, until date, reason); see docs/analyze.md")
    parser.add_argument("--mesh-config", metavar="FILE",
                        help="MeshConfig YAML (rootNamespace, enableAutoMtls, outboundTrafficPolicy, trustDomain) "
                             "or Istio's mesh ConfigMap; Istio's defaults otherwise")
    cluster = parser.add_argument_group("cluster", "analyze a cluster's live config (read-only), together with any "
                                        "PATHs, which replace the cluster's objects of the same kind and name")
    cluster.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig of the cluster to read")
    cluster.add_argument("--context", action="append", default=[], metavar="NAME",
                         help="kubeconfig context (default: the current one); repeat it for a multi-cluster mesh: "
                              "each cluster is analyzed, then same-named Services are compared across them")
    cluster.add_argument("-n", "--namespace", action="append", default=[], metavar="NS",
                         help="files: the namespace of objects that set none, as `kubectl apply -n NS` would put "
                              "them (default: the kubeconfig context's namespace with --kubeconfig/--context, else "
                              "'default'; the first -n counts); cluster: only read these namespaces (repeatable; the "
                              "mesh root namespace is always read)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="text output: also print each finding's remediation, related objects and equivalents")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                        help="color text output (auto: when writing to a terminal and NO_COLOR is unset)")
    parser.add_argument("--list-rules", action="store_true", help="list the config rules and exit")
    parser.add_argument("--list-codes", action="store_true", help="list every finding code and exit")
    from meshscope.commands import impact
    impact.add_arguments(parser)
    parser.set_defaults(_parser=parser)


def _usage_error(args: argparse.Namespace, message: str) -> int:
    parser = getattr(args, "_parser", None)
    if parser is not None:
        parser.print_usage(sys.stderr)
    say(f"meshscope analyze: error: {message}", file=sys.stderr)
    return 2


def _list_rules(out: TextIO) -> None:
    from diagnose.rules import ALL_RULES

    width = max(len(r.metadata.name) for r in ALL_RULES)
    for r in ALL_RULES:
        m = r.metadata
        out.write(f"{m.name:<{width}}  {m.description}  [{', '.join(m.codes)}; reads {', '.join(m.inputs)}]\n")


def _list_codes(out: TextIO) -> None:
    from diagnose.catalog import CATALOG

    for e in CATALOG.values():
        eq = f" ({', '.join(e.equivalents)})" if e.equivalents else ""
        out.write(f"{e.code}  {e.severity:<7}  {e.category:<8}  {e.name}{eq}\n")


def _use_color(args: argparse.Namespace, stream: TextIO) -> bool:
    if args.color != "auto":
        return args.color == "always"
    return stream.isatty() and not os.environ.get("NO_COLOR")


def format_line(f: Any, color: bool = False) -> str:
    """`Error [CODE] (Kind ns/name) message  file:line`."""
    level = f.severity.capitalize()
    if color:
        level = f"{_COLORS.get(f.severity, '')}{_BOLD}{level}{_RESET}"
    # the message, names and file quote the analysed files: their control characters are shown, not obeyed
    where = f" ({terminal_safe(f.resource.label())})" if f.resource else ""
    src = terminal_safe(f.resource.source) if f.resource and f.resource.source else ""
    if src:
        src = f"  {_DIM}{src}{_RESET}" if color else f"  {src}"
    return f"{level} [{f.code}]{where} {terminal_safe(f.message)}{src}"


def _details(f: Any, indent: str, color: bool) -> str:
    """Remediation, related objects and equivalents, indented under a finding (`--verbose`)."""
    dim, reset = (_DIM, _RESET) if color else ("", "")
    lines = []
    safe = terminal_safe
    if f.remediation:
        lines.append(f"{indent}fix: {safe(f.remediation)}")
    for r in f.related:
        lines.append(f"{indent}{dim}related: {safe(r.label())}{'  ' + safe(r.source) if r.source else ''}{reset}")
    if f.equivalents:
        lines.append(f"{indent}{dim}same as: {safe(', '.join(f.equivalents))}{reset}")
    return "".join(line + "\n" for line in lines)


def _write_text(findings: list, out: TextIO, color: bool, verbose: bool = False) -> None:
    if not color:
        for f in findings:
            out.write(format_line(f) + "\n")
            if verbose:
                out.write(_details(f, "    ", False))
        return
    # On a terminal: one group per file, so a long report reads file by file.
    current = None
    for f in findings:
        src = f.resource.source if f.resource and f.resource.source else ""
        file = src.rpartition(":")[0] if src.rpartition(":")[2].isdigit() else src
        if file != current:
            out.write(f"\n{_BOLD}{terminal_safe(file) if file else '(no file)'}{_RESET}\n")
            current = file
        out.write("  " + format_line(f, color=True) + "\n")
        if verbose:
            out.write(_details(f, "      ", True))


def _summary(findings: list, n_objects: int, n_files: int, n_skipped: int = 0) -> str:
    counts = Counter(f.severity for f in findings)
    parts = [f"{counts[s]} {s}{'s' if counts[s] != 1 and s != 'info' else ''}" for s in LEVELS if counts[s]]
    found = ", ".join(parts) if parts else "no findings"
    skipped = f", {n_skipped} unreadable cluster object{'s' if n_skipped != 1 else ''} skipped" if n_skipped else ""
    return (f"{found} in {n_objects} object{'s' if n_objects != 1 else ''} from {n_files} "
            f"file{'s' if n_files != 1 else ''}{skipped}")


def skipped_problems(status: dict[str, dict[str, Any]], origin: str) -> list[tuple[int, Any]]:
    """What a listing skipped (`KubeSource.status()[kind]["malformed"]`): (count, info problem MS0025) per kind and
    reason, the problem naming the count and the kind's kept sample, as skipped files are reported (MS0024)."""
    from mesh.config import LoadProblem

    out = []
    for kind, st in sorted(status.items()):
        sample = st.get("malformed_sample") or ""
        for reason, n in sorted((st.get("malformed") or {}).items()):
            example = f"; e.g. {sample}" if sample.startswith(f"{reason}:") else ""
            out.append((n, LoadProblem(f"{origin}/{kind}", 0, f"{n} {kind} object{'s' if n != 1 else ''} the API "
                                       f"listed could not be read ({reason}), skipped{example}",
                                       reason="unreadable-cluster-object")))
    return out


def _cluster_objects(kubeconfig: str | None, context: str | None, namespaces: list[str],
                     root_namespace: str, skipped: list | None = None) -> list:
    """Every object meshscope reads from one cluster, listed once (no watch); what could not be read is
    appended to `skipped` as (count, problem) pairs (`skipped_problems`)."""
    from mesh.config import EXCLUDED_NAMESPACES
    from mesh.kube import KubeSource, api_client

    from meshscope.config_source import istio_config_hint

    origin = f"k8s:{context or 'cluster'}"
    source = KubeSource(api_client(kubeconfig, context), namespaces=namespaces or None,
                        root_namespace=root_namespace, origin=origin)
    objects = [o for o in source.list_all() if o.namespace not in EXCLUDED_NAMESPACES]
    status = source.status()
    if skipped is not None:
        skipped += skipped_problems(status, origin)
    hint = istio_config_hint(status, objects)
    if hint:  # sidecars but no Istio kinds served: an ASM data-plane cluster without KubeAPI access
        say(f"meshscope analyze: {context or 'cluster'}: {hint}", file=sys.stderr)
    forbidden = sorted(kind for kind, st in status.items() if st.get("forbidden"))
    if forbidden:  # an add-on kind the role may not read: its checks did not run, and the user should know
        say(f"meshscope analyze: {context or 'cluster'}: not readable with these credentials, so not analyzed: "
              f"{', '.join(forbidden)} (grant get/list on them: deploy/kubernetes/rbac.yaml)", file=sys.stderr)
    return objects


def _analyze_all(loaded: Any, clusters: dict[str, list], mesh_config: Any, ignore: set[str],
                 suppressions: list, cluster_skipped: list = ()) -> tuple[list, list]:
    """Findings for the files alone, or for each cluster with the files laid over it (plus the cross-cluster
    comparison when there are several); returns (findings, every object analyzed)."""
    from diagnose import analyze
    from diagnose.multicluster import inconsistent_services
    from diagnose.suppression import apply_suppressions
    from diagnose.suppression_file import apply_entries
    from mesh.config import Snapshot
    from meshscope.cluster_analyze import overlay

    # skipped files (info MS0024) and unreadable cluster objects (info MS0025) are said to be, not analyzed
    problems = [*loaded.problems, *loaded.skipped, *(p for _, p in cluster_skipped)]
    if not clusters:
        from mesh.config.defaults import assumed_install
        implied = assumed_install(mesh_config, loaded.objects)  # files only: istiod and the ingress gateway
        snap = Snapshot(loaded.objects + implied, mesh_config)
        objects = [o for o in snap.objects if o not in implied]
        return analyze(snap, ignore=ignore, problems=problems, suppressions=suppressions), objects
    # A local file replacing a cluster object is the point of the overlay, not a duplicate (MS0011):
    # only definitions repeated among the local files are reported.
    snaps = {name: Snapshot(overlay(objs, loaded.objects), mesh_config) for name, objs in clusters.items()}
    found: list = []
    for i, snap in enumerate(snaps.values()):
        found += analyze(snap, ignore=ignore, problems=problems if i == 0 else (), suppressions=suppressions)
    if len(snaps) > 1:
        cross = inconsistent_services(snaps)
        for snap in snaps.values():
            cross = apply_suppressions(cross, snap, ignore)
        found += apply_entries(cross, suppressions)
    unique: dict[tuple, Any] = {}
    for f in found:  # a file's finding once, not once per cluster
        r = f.resource
        unique.setdefault((f.code, r.label() if r else "", r.path if r else None, r.source if r else None,
                           f.message), f)
    return list(unique.values()), [o for snap in snaps.values() for o in snap.objects]


def _load_in_order(paths: list[str], default_namespace: str) -> Any:
    """Every PATH in the order given; `-` is standard input, read once where it first appears.

    The order decides which of two definitions of one object is analyzed (the last, as
    `kubectl apply -f` would keep), so standard input takes its place among the paths.
    """
    from mesh.config import load_paths, load_text

    loaded = load_paths([], default_namespace=default_namespace)
    run: list[str] = []
    stdin_read = False
    for p in [*paths, None]:
        if p is not None and p != "-":
            run.append(p)
            continue
        if run:
            loaded.extend(load_paths(run, default_namespace=default_namespace))
            run = []
        if p == "-" and not stdin_read:  # `kubectl get ... -o yaml | meshscope analyze -`
            stdin_read = True
            loaded.extend(load_text(sys.stdin.read(), "<stdin>", default_namespace=default_namespace))
    return loaded


def run(args: argparse.Namespace) -> int:
    if args.list_rules or args.list_codes:
        (_list_rules if args.list_rules else _list_codes)(sys.stdout)
        return 0
    if args.impact or args.delete_refs:  # what-if: predict what the files/deletions would break (commands.impact)
        from meshscope.commands import impact
        return impact.run(args, (args.impact or []) + args.paths)
    from_cluster = bool(args.kubeconfig or args.context)
    if not args.paths and not from_cluster:
        return _usage_error(args, "give at least one file or folder to analyze (or --kubeconfig/--context)")
    missing = [p for p in args.paths if p != "-" and not os.path.exists(p)]
    if missing:
        return _usage_error(args, f"no such file or directory: {', '.join(missing)}")

    from diagnose.catalog import CATALOG
    from diagnose.findings import SEVERITY_RANK
    from diagnose.suppression import parse_codes
    from diagnose.suppression_file import SuppressionFileError, load_suppressions
    from mesh.config import MeshConfig, MeshConfigError, load_mesh_config
    from mesh.config.loader import expand_paths
    from mesh.config.namespaces import default_namespace

    ignore = parse_codes(args.ignore)
    unknown = sorted(c for c in ignore if c not in CATALOG and not (c[:3] in ("IST", "KIA") and c[3:].isdigit()))
    if unknown:
        return _usage_error(args, f"unknown finding code(s) for --ignore: {', '.join(unknown)} "
                                  "(see `meshscope analyze --list-codes`)")
    try:
        mesh_config = load_mesh_config(args.mesh_config) if args.mesh_config else MeshConfig()
    except MeshConfigError as exc:
        return _usage_error(args, str(exc))
    try:
        suppressions = load_suppressions(args.suppressions) if args.suppressions else []
    except SuppressionFileError as exc:
        return _usage_error(args, str(exc))

    tty = sys.stderr.isatty()
    started = time.perf_counter()
    files, _ = expand_paths([p for p in args.paths if p != "-"])
    if tty and len(files) > 200:
        print(f"analyzing {len(files)} files ...", file=sys.stderr, flush=True)
    clusters: dict[str, list] = {}
    cluster_skipped: list = []
    for context in (args.context or [None]) if from_cluster else []:
        try:
            clusters[context or "cluster"] = _cluster_objects(args.kubeconfig, context, args.namespace,
                                                              mesh_config.root_namespace, cluster_skipped)
        except Exception as exc:  # unreachable cluster, bad credentials: one clear line
            say(f"meshscope analyze: cannot read the cluster{f' {context}' if context else ''}: {exc}",
                  file=sys.stderr)
            return 2
    try:
        namespace = default_namespace(args.namespace[0] if args.namespace else None, args.kubeconfig,
                                      args.context[0] if args.context else None, from_cluster)
        loaded = _load_in_order(args.paths, namespace)
        findings, objects = _analyze_all(loaded, clusters, mesh_config, ignore, suppressions, cluster_skipped)
    except Exception as exc:  # a bug must still end in one clear line, never a traceback
        say(f"meshscope analyze: internal error: {type(exc).__name__}: {exc} (please report this)", file=sys.stderr)
        return 2

    if args.format == "json":
        json.dump([f.to_dict() for f in findings], sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        _write_text(findings, sys.stdout, _use_color(args, sys.stdout), args.verbose)
        if tty or not findings:
            took = time.perf_counter() - started
            n_skipped = sum(n for n, _ in cluster_skipped)
            print(f"{_summary(findings, len(objects), len(files), n_skipped)} ({took:.2f}s)", file=sys.stderr)
    threshold = SEVERITY_RANK[args.fail_on]
    return 1 if any(SEVERITY_RANK.get(f.severity, 0) >= threshold for f in findings) else 0
