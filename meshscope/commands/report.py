"""`meshscope report`: write a diagnostic report (HTML, Markdown, JSON or PDF) from a running meshscope or a saved snapshot."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from diagnose.terminal_text import say  # lines quote files, names and servers' answers: shown, never obeyed

HELP = "write a diagnostic report (html, md, json, pdf) from a running meshscope or a saved snapshot"
DEFAULT_URL = "http://127.0.0.1:8050"

EPILOG = """\
examples:
  meshscope report -o mesh.html                       # from the meshscope running at 127.0.0.1:8050
  meshscope report --format pdf -o mesh.pdf --from http://127.0.0.1:8050
  meshscope report --format json -o snapshot.json     # also a saved snapshot, for later:
  meshscope report --snapshot snapshot.json --format md -o ticket.md
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--format", "-f", choices=("html", "md", "json", "pdf"),
                        help="output format (default: from the -o file extension, else html)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="file to write; '-' writes html, md or json to stdout")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--from", dest="url", metavar="URL",
                     help=f"running meshscope to read from (GET URL/api/v1/report?format=json; default {DEFAULT_URL})")
    src.add_argument("--snapshot", metavar="FILE", help="saved snapshot (a JSON report) to render instead")
    parser.add_argument("--token", default=None,
                        help="token of a meshscope bound beyond loopback (default: $MESHSCOPE_TOKEN)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the running meshscope (default 30)")


def _fetch(url: str, timeout: float, token: str | None) -> dict:
    import httpx

    endpoint = url.rstrip("/") + "/api/v1/report"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = httpx.get(endpoint, params={"format": "json"}, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise RuntimeError(f"cannot reach meshscope at {url}: {exc} (is `meshscope up` running? or use --snapshot FILE)") from None
    if resp.status_code in (401, 403):
        raise RuntimeError(f"{endpoint} answered HTTP {resp.status_code}: this meshscope needs a token "
                           "(--token or MESHSCOPE_TOKEN)" + (" and the one given was refused" if token else ""))
    if resp.status_code != 200:
        raise RuntimeError(f"{endpoint} answered HTTP {resp.status_code}: {resp.text[:200]}")
    try:
        return resp.json()
    except ValueError:
        raise RuntimeError(f"{endpoint} did not return JSON") from None


def run(args: argparse.Namespace) -> int:
    from diagnose.reports import EXTENSIONS, Snapshot, SnapshotError, load_snapshot, render

    out = args.output
    fmt = args.format or EXTENSIONS.get(Path(out).suffix.lower(), "html")
    if out == "-" and fmt == "pdf":
        say("meshscope report: refusing to write a PDF to the terminal; give -o FILE.pdf", file=sys.stderr)
        return 2
    try:
        if args.snapshot:
            snapshot = load_snapshot(args.snapshot)
            origin = args.snapshot
        else:
            url = args.url or DEFAULT_URL
            say(f"reading report data from {url} ...", file=sys.stderr)
            token = args.token if args.token is not None else os.environ.get("MESHSCOPE_TOKEN") or None
            snapshot = Snapshot.from_dict(_fetch(url, args.timeout, token), where=f"{url}/api/v1/report")
            origin = url
    except (SnapshotError, RuntimeError) as exc:
        say(f"meshscope report: {exc}", file=sys.stderr)
        return 1
    for problem in snapshot.problems:
        say(f"warning: {problem}", file=sys.stderr)
    say(f"rendering {fmt} ({len(snapshot.findings)} findings, {len(snapshot.slos)} SLOs, "
          f"{sum(1 for e in snapshot.graph if 'source' not in e.get('data', {}))} graph nodes) ...", file=sys.stderr)
    data = render(snapshot, fmt)
    if out == "-":
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
    else:
        try:
            Path(out).write_bytes(data)
        except OSError as exc:
            say(f"meshscope report: cannot write {out}: {exc}", file=sys.stderr)
            return 1
        say(f"wrote {out} ({len(data):,} bytes, {fmt}) from {origin}", file=sys.stderr)
    return 0
