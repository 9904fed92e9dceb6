"""`meshscope analyze --impact FILE...`, `apply --dry-run` and `delete --dry-run`: what a change would break.

A change is proposed YAML (created or replaced objects) and/or live objects to delete (`--delete
Kind/namespace/name`, or the objects of `meshscope delete --dry-run -f FILE`).

The proposed files are judged against live config and the last window's traffic:
- `--from URL`: a running meshscope (`up` or `serve`) predicts it (POST /api/v1/impact);
- `--kubeconfig` + `--prometheus URL`: read the cluster's config and Prometheus's rates here.
Nothing is applied. Exit status: 0 nothing would break (or no more than --max-broken-rps),
1 traffic would break or the files do not load, 2 usage errors (bad option, unreachable source).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from diagnose.terminal_text import say, terminal_safe  # lines quote files, names and servers' answers: shown, never obeyed

DEFAULT_URL = "http://127.0.0.1:8050"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("impact", "predict what proposed files would break, from live traffic")
    g.add_argument("--impact", nargs="+", metavar="FILE", help="proposed YAML files (replayed against live config "
                   "plus these, over the window's observed edges); needs --from or --kubeconfig + --prometheus")
    g.add_argument("--delete", dest="delete_refs", action="extend", nargs="+", metavar="KIND/NS/NAME",
                   help="live objects whose deletion to predict (e.g. DestinationRule/bookinfo/reviews, dr/bookinfo/"
                   "reviews); alone or beside --impact files")
    g.add_argument("--from", dest="from_url", metavar="URL", help="a running meshscope to ask (its UI/API URL)")
    g.add_argument("--prometheus", metavar="URL", help="with --kubeconfig: the Prometheus holding Istio's metrics")
    g.add_argument("--window", default="1h", help="traffic window to replay (default 1h; e.g. 15m, 6h, 3600)")
    g.add_argument("--max-broken-rps", type=float, default=0.0, metavar="RPS",
                   help="exit 0 while no more than this many requests/s would newly fail (default 0)")


def _read(paths: list[str]) -> list[tuple[str, str]]:
    from mesh.config.loader import expand_paths

    if not paths:  # a deletion alone
        return []
    files, problems = expand_paths([Path(p) for p in paths])
    if problems:
        raise ValueError("; ".join(str(p) for p in problems))
    return [(str(f), f.read_text(errors="replace")) for f in files]


def ask_server(url: str, files: list[tuple[str, str]], window: str, namespace: str | None, bar: float,
               token: str | None = None, delete: list[Any] | None = None) -> dict[str, Any]:
    import httpx

    headers = {"X-Meshscope-CSRF": "1"}
    token = token or os.environ.get("MESHSCOPE_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {"files": [{"name": n, "yaml": t} for n, t in files], "window": window, "max_broken_rps": bar}
    if namespace:
        body["namespace"] = namespace
    if delete:
        body["delete"] = delete
    r = httpx.post(f"{url.rstrip('/')}/api/v1/impact", json=body, headers=headers, timeout=120)
    try:
        data = r.json()
    except ValueError:
        raise ConnectionError(f"{url} answered {r.status_code} without JSON (is it meshscope?)") from None
    if r.status_code != 200:
        raise ConnectionError(f"{url}: {r.status_code} {data.get('error', '')}"
                              + (f" (field {data['param']})" if data.get("param") else ""))
    return data


def ask_cluster(args: argparse.Namespace, files: list[tuple[str, str]], window_s: float, bar: float,
                namespace: str, delete: list[Any] | None = None) -> dict[str, Any]:
    import pandas as pd

    from collector.sources.prom_api import PrometheusClient
    from diagnose.whatif.run import impact, verdict
    from meshscope.cluster import RATE_METRICS, rate_query, vector_to_rates
    from meshscope.commands.analyze import _cluster_objects

    root = "istio-system"
    live = _cluster_objects(args.kubeconfig, (args.context or [None])[0], args.namespace, root)
    prom = PrometheusClient(args.prometheus)
    frames = []
    for metric in RATE_METRICS:
        data = prom.query(rate_query(metric, window_s, args.namespace or None))
        frames.append(vector_to_rates(data.get("result") or [], metric, args.prometheus))  # skips counted under it
    frames = [f for f in frames if len(f)]
    rates = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return verdict(impact(live, files, rates, window_s, default_namespace=namespace, root_namespace=root,
                          delete=delete), bar)


def write_text(d: dict[str, Any], out: TextIO) -> None:
    """The prediction as lines; messages quote the proposed files' names and hosts, so each line is written with
    control characters as visible escapes (`line`)."""
    def line(text: str) -> None:
        out.write(terminal_safe(text) + "\n")

    if not d["predicted"]:
        line("the proposed change does not load (or deletes what is not there); no prediction was made:")
        for f in d["findings"]:
            line(f"  {f['code']} {f['message']}")
        return
    for x in d.get("deleted") or []:
        line(f"deleting {x['label']}: the live config without it is replayed")
    if d["no_traffic"]:
        line(f"no traffic was observed in the last {d['window_s']:g}s: nothing to replay, so no edge can be "
                  "judged (the config findings below still apply)")
    for f in d["edge_findings"]:
        r = f.get("resource") or {}
        where = f" [{r.get('kind')} {r.get('namespace')}/{r.get('name')} {r.get('path') or ''}]" if r else ""
        line(f"{f['severity']:<7} {f['code']} {f['message']}{where}")
    for f in d["findings"]:
        line(f"{f['severity']:<7} {f['code']} (config) {f['message']}")
    line(f"replayed {d['edges']} edges ({d['total_rps']:.2f} req/s) over {d['window_s']:g}s: "
              f"{d['broken_rps']:.2f} req/s would newly fail, {d['at_risk_rps'] - d['broken_rps']:.2f} req/s more at "
              f"risk; {'BREAKS' if d['breaks'] else 'ok'} (bar {d['max_broken_rps']:g} req/s)")


def run(args: argparse.Namespace, files_arg: list[str], out: TextIO | None = None,
        delete: list[Any] | None = None) -> int:
    """`delete`: objects to delete ({kind, namespace, name} or Kind/ns/name), else `--delete` refs."""
    from diagnose.whatif.run import parse_window

    out = out or sys.stdout
    delete = delete if delete is not None else list(getattr(args, "delete_refs", None) or [])

    try:
        window_s = parse_window(args.window)
        files = _read(files_arg)
    except (ValueError, OSError) as exc:
        say(f"meshscope: error: {exc}", file=sys.stderr)
        return 2
    if args.max_broken_rps < 0:
        say("meshscope: error: --max-broken-rps must be >= 0", file=sys.stderr)
        return 2
    namespace = (args.namespace or [None])[0] if isinstance(getattr(args, "namespace", None), list) else getattr(args, "namespace", None)
    try:
        if getattr(args, "kubeconfig", None) and getattr(args, "prometheus", None):
            d = ask_cluster(args, files, window_s, args.max_broken_rps, namespace or "default", delete)
        elif getattr(args, "kubeconfig", None) or getattr(args, "prometheus", None):
            say("meshscope: error: --kubeconfig and --prometheus go together (or use --from URL)", file=sys.stderr)
            return 2
        else:
            d = ask_server(args.from_url or DEFAULT_URL, files, args.window, namespace, args.max_broken_rps,
                           getattr(args, "token", None), delete)
    except Exception as exc:  # unreachable server, cluster or Prometheus: a usage problem, said in one line
        say(f"meshscope: error: cannot predict: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "format", "text") == "json":
        json.dump(d, out, default=str)
        out.write("\n")
    else:
        write_text(d, out)
    return 1 if d["breaks"] else 0
