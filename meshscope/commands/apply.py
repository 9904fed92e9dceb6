"""`meshscope apply -f FILE|DIR`: change the running bundled mesh's Istio config, like `kubectl apply`.

Files are validated first: the config model must load them without problems, every
Istio object must satisfy Istio's API (all violations are listed, each with file:line
and field; --force does not override this, as Istio's webhook cannot be), and
the config rules run on the mesh's current config plus the change; an error-level
finding about an object being applied refuses the change (use --force to push
anyway). The mesh itself then refuses what it cannot translate or what Envoy NACKs.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from diagnose.terminal_text import say  # lines quote files, names and servers' answers: shown, never obeyed

HELP = "apply Istio config files to the running bundled mesh (validated first)"


def add_control_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the bundled mesh's control API is and how to authenticate (shared by apply, delete, scenario)."""
    parser.add_argument("--control", default=None, metavar="URL",
                        help="the bundled mesh's control API (default: the URL `meshscope up` recorded in "
                             "DIR/mesh/control.url, else http://127.0.0.1:15080)")
    parser.add_argument("--data-dir", type=Path, default=Path(".meshscope"), metavar="DIR",
                        help="the --data-dir of `meshscope up`; its mesh/control.token authenticates "
                             "(default .meshscope)")
    parser.add_argument("--token", metavar="TOKEN",
                        help="control API token (default $MESHSCOPE_CONTROL_TOKEN, else DIR/mesh/control.token)")


def control_client(args: argparse.Namespace, timeout: float = 30.0):
    from mesh.control_api import DEFAULT_URL, ControlClient, recorded_url
    url = args.control or recorded_url(args.data_dir) or DEFAULT_URL
    return ControlClient(url, timeout=timeout, token=args.token, data_dir=args.data_dir)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--filename", action="append", type=Path, required=True, metavar="FILE|DIR",
                        help="YAML file or directory (repeatable)")
    parser.add_argument("-n", "--namespace", metavar="NS",
                        help="namespace of objects that set none, as `kubectl apply -n` (default: default)")
    add_control_arguments(parser)
    parser.add_argument("--force", action="store_true", help="push even when the config rules report errors")
    add_dry_run_arguments(parser, "apply nothing: predict what the change would break", "--impact")


def add_dry_run_arguments(parser: argparse.ArgumentParser, what: str, analyze_option: str) -> None:
    """--dry-run and what it needs, shared by `apply` and `delete`: a prediction asked of the running meshscope."""
    parser.add_argument("--dry-run", action="store_true",
                        help=f"{what} from the last window's traffic (asks the running meshscope at --from; "
                             f"see `meshscope analyze {analyze_option}`)")
    parser.add_argument("--from", dest="from_url", metavar="URL", help="with --dry-run: the running meshscope's "
                        "UI/API URL (default http://127.0.0.1:8050, where `meshscope up` serves it)")
    parser.add_argument("--window", default="1h", help="with --dry-run: traffic window to replay (default 1h)")
    parser.add_argument("--max-broken-rps", type=float, default=0.0, metavar="RPS",
                        help="with --dry-run: exit 0 while no more than this many requests/s would newly fail")


def load_change(paths: list[Path], verb: str, namespace: str | None = None):
    """Objects from the files (each once, as its last definition), or None after printing every problem.

    Objects without a namespace get `namespace` (else `default`), written into what is pushed."""
    from mesh.config import last_wins, load_paths
    from mesh.config.loader import expand_paths
    from mesh.config.namespaces import default_namespace
    from mesh.control_api import MAX_BODY

    files, _ = expand_paths(paths)  # before any validation: a change the mesh would refuse for size costs nothing
    size = sum(f.stat().st_size for f in files if f.is_file())
    if size > MAX_BODY:
        say(f"meshscope {verb}: refused before validation: the files are {size / 1048576:.1f} MiB, over the "
              f"control API's {MAX_BODY // 1048576} MiB request limit; split them into several `meshscope {verb}` runs")
        return None
    result = load_paths(paths, exclude_namespaces=frozenset(), default_namespace=default_namespace(namespace))
    if verb == "apply":  # every field Istio's API would refuse, with the line in the user's file
        from mesh.config.schema import problems as schema_problems
        result.problems.extend(schema_problems(result.objects))
    if result.problems:
        say(f"meshscope {verb}: refused, the files have problems:")
        for p in result.problems:
            say(f"  {p}")
        return None
    if not result.objects:
        say(f"meshscope {verb}: no objects in {', '.join(map(str, paths))}")
        return None
    objects, duplicates = last_wins(result.objects)
    for dup in duplicates:
        say(f"meshscope {verb}: warning: {dup.summary()}")
    return objects


def as_yaml(objects) -> str:
    import yaml
    return yaml.safe_dump_all([o.raw for o in objects], sort_keys=False)


def blocking_findings(current_yaml: str, change) -> list:
    """Error findings the config rules report about the changed objects, in the context of the live config."""
    from diagnose import analyze
    from mesh.config import Snapshot, load_text
    from mesh.controlplane.store import with_applied

    current = load_text(current_yaml, "<mesh>", exclude_namespaces=frozenset()).objects
    candidate = with_applied(current, change)
    keys = {(o.kind, o.namespace, o.name) for o in change}  # what a finding's ResourceRef carries
    out = []
    for f in analyze(Snapshot(candidate)):
        r = f.resource
        if f.severity == "error" and r is not None and (r.kind, r.namespace, r.name) in keys:
            out.append(f)
    return out


def run(args: argparse.Namespace) -> int:
    from mesh.control_api import ControlError

    change = load_change(args.filename, "apply", args.namespace)
    if change is None:
        return 1
    if args.dry_run:  # predict only: the mesh is not touched (meshscope.commands.impact)
        from meshscope.commands import impact
        args.token = None  # the control API's token is not the UI's
        return impact.run(args, [str(p) for p in args.filename])
    client = control_client(args)
    try:
        current = client.config_yaml()
        findings = blocking_findings(current, change)
        if findings and not args.force:
            say("meshscope apply: refused, the config rules report errors (--force to apply anyway):")
            for f in findings:
                where = f" ({f.resource.source})" if f.resource and f.resource.source else ""
                say(f"  {f.code} {f.resource.label() if f.resource else ''}{where}: {f.message}")
            return 1
        r = client.apply(as_yaml(change), ",".join(map(str, args.filename)))
    except ControlError as exc:
        say(f"meshscope apply: {exc}")
        for p in exc.problems:
            say(f"  {p}")
        return 1
    print_push(r, "applied")
    return 0


def print_push(r: dict, verb: str) -> None:
    """What the control API answered for a push (shared by apply and delete)."""
    for ref in r["changed"]:
        say(f"{ref} {verb}")
    for w in r.get("warnings") or []:
        say(f"  warning: {w}")
    if r.get("in_sync", True):
        say(f"pushed to every sidecar in {r['seconds']:.3f}s")
    else:
        say(f"pushed, but not every sidecar confirmed it within {r['seconds']:.0f}s (see the warning above)")
