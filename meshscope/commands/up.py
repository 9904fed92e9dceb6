"""`meshscope up`: the bundled mesh with collectors, the live diagnoser and the UI, until Ctrl-C."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from diagnose.terminal_text import say, terminal_safe

HELP = "run the bundled demo mesh (real Envoy sidecars, Bookinfo demo, traffic) with collectors, diagnoser and UI"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", metavar="NAME", help="apply a fault scenario once the mesh is up "
                        "(see `meshscope scenario list`)")
    parser.add_argument("--rate", type=float, default=5.0, metavar="RPS",
                        help="demo traffic through the gateway, requests per second (default 5; 0 = none)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="UI/API bind address (default 127.0.0.1; anything else needs --token)")
    parser.add_argument("--port", type=int, default=8050, help="meshscope UI and API port (default 8050)")
    parser.add_argument("--token", default=os.environ.get("MESHSCOPE_TOKEN"),
                        help="token the UI/API require (default $MESHSCOPE_TOKEN; required beyond loopback)")
    parser.add_argument("--gateway-port", type=int, default=8080, help="ingress gateway port (default 8080)")
    parser.add_argument("--control-port", type=int, default=15080,
                        help="control API for `meshscope apply/delete/scenario` (default 15080); its token "
                             "is written to DATA_DIR/mesh/control.token")
    parser.add_argument("--otlp-port", type=int, default=4318,
                        help="meshscope's OTLP/HTTP receiver for traces (default 4318; 0 = any free port)")
    parser.add_argument("--data-dir", type=Path, default=Path(".meshscope"),
                        help="telemetry store, access logs, alert outbox and run files (default .meshscope)")
    parser.add_argument("--scrape-interval", type=float, default=5.0, metavar="S",
                        help="seconds between scrapes of the sidecars' /stats/prometheus (default 5)")
    parser.add_argument("--retention", type=_duration, default=24 * 3600.0, metavar="DURATION",
                        help="how long telemetry is kept in --data-dir, e.g. 24h, 3d, 90m (default 24h; the pages' "
                             "time travel reaches this far)")
    parser.add_argument("--slo", action="append", type=Path, default=[], metavar="FILE",
                        help="SLO YAML (meshscope.io/v1alpha1 ServiceLevelObjective, Sloth, OpenSLO); "
                             "default: the demo's SLOs")
    parser.add_argument("--alerts", type=Path, metavar="FILE", help="alert receivers YAML (see docs/alerts.md)")
    parser.add_argument("-f", "--config", action="append", type=Path, default=[], metavar="FILE",
                        help="extra Istio YAML applied at start (repeatable)")
    parser.add_argument("-n", "--namespace", default="default", metavar="NS",
                        help="namespace of --config objects that set none, as `kubectl apply -n` (default: default)")
    parser.add_argument("--trace-sample", type=_ratio, default=1.0, metavar="RATIO",
                        help="share of traces the OTLP receivers keep, 0..1, whole traces by trace id (default 1)")
    parser.add_argument("--trace-batch", action="store_true",
                        help="decode and store OTLP/HTTP trace exports that are already waiting together (a lone "
                             "sender is never held; default off: no measurable gain on the demo, docs/collector.md)")
    parser.add_argument("--ready-timeout", type=_duration, default=30.0, metavar="DURATION",
                        help="how long the mesh may take to come up (sidecars live, apps listening, the gateway "
                             "serving), e.g. 90s, 2m (default 30s; raise it on a slow or busy machine)")
    parser.add_argument("--no-ui", action="store_true", help="run the mesh, collectors and diagnoser without the UI")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="a DNS name the UI/API may be reached by (repeatable; '.example.com' allows every name "
                             "under it); other Host headers are refused against DNS rebinding. IP addresses and "
                             "localhost are always accepted")


def _findings_line(opened: list) -> str:
    """The line `up` prints when the open findings change: the worst one's message quotes config names and
    request paths, so it is shown with control characters as escapes (and cut after they are escaped)."""
    if not opened:
        return "0 open finding(s)"
    return f"{len(opened)} open finding(s), worst: [{opened[0].code}] {terminal_safe(opened[0].message)[:90]}"


def _record_control_url(mesh) -> None:  # noqa: ANN001
    """Write where the control API listens beside its token, so apply/scenario find a non-default port."""
    from mesh.control_api import URL_FILE
    from mesh.dataplane.envoy import write_private_file
    try:
        write_private_file(mesh.control_token_path.with_name(URL_FILE), f"http://127.0.0.1:{mesh.control.port}\n")
    except OSError as exc:
        say(f"  (could not record the control URL: {exc})")


def _forget_control_url(mesh) -> None:  # noqa: ANN001
    from mesh.control_api import URL_FILE
    path = mesh.control_token_path.with_name(URL_FILE)
    try:
        if mesh.control and path.read_text().strip() == f"http://127.0.0.1:{mesh.control.port}":
            path.unlink()
    except OSError:
        pass


def _duration(text: str) -> float:
    """argparse type: a duration such as 24h, 3d, 90m (a usage error, exit 2, otherwise)."""
    from diagnose.slo.windows import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _ratio(text: str) -> float:
    """argparse type: a number between 0 and 1 (a usage error, exit 2, otherwise)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _setup_logging() -> None:
    """Warnings and errors of every module (servers, collectors, diagnoser) as one line each, through the
    formatter that shows control characters: logged values quote requests, spans and config names. Without a
    handler Python's last-resort one printed them raw."""
    import logging

    from diagnose.terminal_text import safe_log_handler

    logging.basicConfig(level=logging.WARNING, handlers=[safe_log_handler()], force=True)


def run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from meshscope import memory

    memory.tune()  # before the threads that allocate start (meshscope/memory.py)

    from dashboard.access import AccessError, check_bind
    from mesh.bundled import BundledConfig, ConfigRejected, NotReady
    from mesh.scenarios import names
    from meshscope.app import DEMO_SLOS, BundledBackend, Stack, StackOptions

    if args.scenario and args.scenario not in names():
        say(f"meshscope up: unknown scenario {args.scenario!r}; known: {', '.join(names())}")
        return 2
    for f in [*args.slo, *args.config, *([args.alerts] if args.alerts else [])]:
        if not f.exists():
            say(f"meshscope up: {f}: no such file")
            return 2
    if args.allowed_host:  # read by dashboard.server.start (the Stack builds the UI)
        os.environ["MESHSCOPE_ALLOWED_HOSTS"] = ",".join(args.allowed_host)
    try:
        check_bind(args.host, args.token)  # before anything starts
    except AccessError as exc:
        say(f"meshscope up: {exc}")
        return 2
    _setup_logging()
    mesh_cfg = BundledConfig(gateway_port=args.gateway_port, control_port=args.control_port,
                             data_dir=args.data_dir / "mesh", traffic_rate=args.rate, scenario=args.scenario,
                             extra_config=list(args.config), config_namespace=args.namespace,
                             ready_timeout=args.ready_timeout)
    options = StackOptions(host=args.host, port=args.port, otlp_port=args.otlp_port, data_dir=args.data_dir,
                           token=args.token, slo_paths=list(args.slo) or [DEMO_SLOS], alerts_config=args.alerts,
                           ui=not args.no_ui, trace_sample=args.trace_sample, trace_batch=args.trace_batch,
                           store_window_s=args.retention)
    stack = Stack(BundledBackend(mesh_cfg, scrape_interval=args.scrape_interval), options)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("meshscope up: starting ...", flush=True)
    try:
        stack.start(progress=lambda msg: say(f"  {msg}"))
    except ConfigRejected as exc:
        say("meshscope up: the config was refused:")
        for problem in exc.problems:
            say(f"  {problem}")
        return 1
    except AccessError as exc:
        say(f"meshscope up: {exc}")
        return 2
    except NotReady as exc:
        say(f"meshscope up: could not start: {exc}; on a slow or busy machine, give it longer with "
            f"--ready-timeout (e.g. --ready-timeout 2m)")
        return 1
    except (OSError, RuntimeError) as exc:
        say(f"meshscope up: could not start: {exc}")
        return 1
    try:
        mesh = stack.backend.mesh
        print(f"  control API         {mesh.status()['control_api']}  (meshscope apply -f FILE | scenario apply NAME)")
        if mesh.control:
            print(f"  control token       {mesh.control_token_path}  (0600; apply/delete/scenario read it)")
            _record_control_url(mesh)
        say(f"  access logs         {mesh.log_dir}")
        for w in mesh.status()["workloads"]:  # workload names come from the config (-f FILE)
            say(f"  sidecar {w['namespace'] + '/' + w['name']:<24} {w['stats']}/stats/prometheus")
        if mesh.scenario:
            say(f"  scenario            {mesh.scenario}")
        print("Ready. Ctrl-C to stop.", flush=True)
        memory.probe_from_environment(stack)  # MESHSCOPE_MEMORY_PROBE=file: where memory sits, over time
        last = None
        while not stop.wait(10):
            opened = stack.diagnoser.findings({"status": "open"})
            summary = _findings_line(opened)
            if summary != last:
                say(f"  {summary}")
                last = summary
    except KeyboardInterrupt:
        pass
    finally:
        print("\nmeshscope up: stopping ...", flush=True)
        _forget_control_url(stack.backend.mesh)
        stack.stop()
    return 0
