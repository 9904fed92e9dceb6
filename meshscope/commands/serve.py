"""`meshscope serve`: the UI, API, diagnoser and alerts over a real cluster (Kubernetes API + Prometheus)."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

HELP = "watch a real Istio/ASM cluster: config from the Kubernetes API, metrics from Prometheus, UI and API"

EPILOG = """\
examples:
  meshscope serve --prometheus http://127.0.0.1:9090            # current kubeconfig context, every namespace
  meshscope serve --context prod -n bookinfo,shop --prometheus https://thanos.example/ --prometheus-token-file T
  kubectl -n istio-system port-forward svc/prometheus 9090 &  meshscope serve --prometheus http://127.0.0.1:9090
  meshscope serve --snapshot incident.json                      # browse a saved snapshot or JSON report, no cluster

Secrets can come from the environment instead of the command line: MESHSCOPE_TOKEN (UI/API token),
MESHSCOPE_OTLP_TOKEN (OTLP receivers' token, required with a --host beyond loopback),
MESHSCOPE_PROMETHEUS (URL), MESHSCOPE_PROMETHEUS_TOKEN, MESHSCOPE_PROMETHEUS_PASSWORD.
Inside a pod with neither --kubeconfig nor --context, the pod's service account is used.
See docs/cluster.md for the Istio and Prometheus settings meshscope needs."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    k = parser.add_argument_group("cluster")
    k.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, "
                   "or the pod's service account when running in-cluster)")
    k.add_argument("--context", metavar="NAME", help="kubeconfig context (default: the current one)")
    k.add_argument("--config-kubeconfig", metavar="PATH",
                   help="a separate kubeconfig for Istio's and ASM's config (e.g. the Alibaba Cloud ASM instance's); "
                        "workloads still come from --kubeconfig/--context")
    k.add_argument("--config-context", metavar="NAME",
                   help="context for the config API (in --config-kubeconfig, else in --kubeconfig)")
    k.add_argument("-n", "--namespaces", metavar="A,B", action="append", default=[],
                   help="namespaces to watch and graph, comma-separated or repeated (default: all); "
                        "the mesh root namespace (istio-system) is always read")
    k.add_argument("--mesh-config", metavar="FILE", type=Path,
                   help="MeshConfig YAML or the `istio` ConfigMap (root namespace, trust domain, mTLS defaults)")
    p = parser.add_argument_group("prometheus")
    p.add_argument("--prometheus", metavar="URL", default=os.environ.get("MESHSCOPE_PROMETHEUS"),
                   help="Prometheus (or Thanos/Mimir querier) base URL, e.g. http://prometheus.istio-system:9090 "
                        "(default: $MESHSCOPE_PROMETHEUS)")
    p.add_argument("--prometheus-token", metavar="TOKEN", default=os.environ.get("MESHSCOPE_PROMETHEUS_TOKEN"),
                   help="bearer token for Prometheus (default: $MESHSCOPE_PROMETHEUS_TOKEN)")
    p.add_argument("--prometheus-token-file", metavar="FILE", type=Path,
                   help="read the bearer token from a file (e.g. a mounted service-account token)")
    p.add_argument("--prometheus-user", metavar="USER", help="basic-auth user for Prometheus")
    p.add_argument("--prometheus-password", metavar="PASSWORD", default=os.environ.get("MESHSCOPE_PROMETHEUS_PASSWORD"),
                   help="basic-auth password (default: $MESHSCOPE_PROMETHEUS_PASSWORD)")
    p.add_argument("--prometheus-timeout", metavar="SECONDS", type=float, default=10.0,
                   help="per-query timeout (default 10)")
    s = parser.add_argument_group("meshscope")
    s.add_argument("--host", default="127.0.0.1", help="UI/API bind address (default 127.0.0.1; anything else "
                   "requires a token)")
    s.add_argument("--port", type=int, default=8050, help="UI and API port (default 8050; 0 = any free port)")
    s.add_argument("--token", default=os.environ.get("MESHSCOPE_TOKEN"),
                   help="UI/API access token (default: $MESHSCOPE_TOKEN); required beyond loopback")
    s.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a DNS name the UI/API may be reached by (repeatable; '.example.com' allows every name under "
                        "it); other Host headers are refused against DNS rebinding (IPs and localhost always work)")
    s.add_argument("--snapshot", metavar="FILE", type=Path,
                   help="serve a saved UI snapshot or `meshscope report --format json` file instead of a cluster "
                        "(no Kubernetes API or Prometheus needed; --host/--port/--token apply)")
    s.add_argument("--otlp-port", type=int, default=4318, metavar="N",
                   help="OTLP/HTTP receiver port for traces (default 4318; 0 = any free port)")
    s.add_argument("--otlp-token-file", type=Path, metavar="FILE",
                   help="bearer token the OTLP receivers require (default: $MESHSCOPE_OTLP_TOKEN). Required when "
                        "--host is not loopback, since the receivers then listen there too: senders add the "
                        "header 'Authorization: Bearer <token>' (OTEL_EXPORTER_OTLP_HEADERS); without one, a "
                        "request gets 401 (gRPC: UNAUTHENTICATED). On 127.0.0.1 no token is needed")
    s.add_argument("--otlp-unauthenticated", action="store_true",
                   help="beyond loopback, take OTLP without a token anyway: only where a NetworkPolicy admits the "
                        "mesh's pods alone (Istio's envoyOtelAls provider sends no header)")
    s.add_argument("--otlp-grpc-port", type=int, default=None, metavar="N",
                   help="OTLP/gRPC receiver for Envoy OpenTelemetry access logs and traces (default 4317, or any free "
                        "port when --otlp-port is 0; -1 = off); see docs/cluster.md")
    s.add_argument("--data-dir", type=Path, default=Path(".meshscope"), help="store and alert outbox (default .meshscope)")
    s.add_argument("--alerts", type=Path, metavar="FILE", help="alert sinks config (see docs/alerts.md)")
    s.add_argument("--slo", type=Path, action="append", default=[], metavar="FILE", help="SLO file (repeatable)")
    s.add_argument("-v", "--verbose", action="store_true", help="log every failed Prometheus/Kubernetes call with "
                   "its stack (default: one line per status change)")


def _fail(message: str, code: int = 2) -> int:
    """One line on stderr; `message` quotes paths and servers' answers, so its control characters are shown."""
    import sys

    from diagnose.terminal_text import say

    say(f"meshscope serve: {message}", file=sys.stderr)
    return code


def _setup_logging(verbose: bool) -> None:
    """Warnings as one timestamped line each; an unreachable Prometheus or API server is not a bug,
    so its failures are not logged with a stack on every refresh: the backend's status notes say it once."""
    import logging

    from collector.sources.prom_api import PrometheusAPIError
    from mesh.kube import KubeError

    from diagnose.terminal_text import safe_log_handler  # logged values show control characters, never obey them

    handler = safe_log_handler()
    if not verbose:
        def expected(record: logging.LogRecord) -> bool:
            exc = record.exc_info[1] if record.exc_info else None
            return not isinstance(exc, (PrometheusAPIError, KubeError))

        handler.addFilter(expected)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler], force=True)
    for noisy in ("urllib3", "meshscope.kube"):  # per-retry warnings; the backend reports state changes once
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.ERROR)


def _wait_for_stop() -> None:
    """Until Ctrl-C or SIGTERM (both serve modes)."""
    import signal
    import threading

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print("Ctrl-C to stop.", flush=True)
    try:
        while not done.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass


def _serve_snapshot(args: argparse.Namespace) -> int:
    """The UI and API over a saved snapshot: what an incident looked like, with no cluster behind it."""
    cluster_flags = [flag for flag, value in (("--kubeconfig", args.kubeconfig), ("--context", args.context),
                                              ("--config-kubeconfig", args.config_kubeconfig),
                                              ("--config-context", args.config_context),
                                              ("--namespaces", args.namespaces), ("--mesh-config", args.mesh_config),
                                              ("--alerts", args.alerts), ("--slo", args.slo)) if value]
    if cluster_flags:
        return _fail(f"--snapshot serves a saved file; {', '.join(cluster_flags)} only apply to a live cluster")
    if not args.snapshot.is_file():
        return _fail(f"no such file: {args.snapshot}")
    from dashboard.access import AccessError, check_bind
    from dashboard.server import start
    from dashboard.snapshot_source import SnapshotError, SnapshotSource
    from diagnose.terminal_text import say

    try:
        check_bind(args.host, args.token)
    except AccessError as exc:
        return _fail(str(exc))
    try:
        source = SnapshotSource.from_file(args.snapshot)
    except SnapshotError as exc:
        return _fail(str(exc))
    try:
        ui = start(source, args.host, args.port, args.token)
    except OSError as exc:
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc} (pick another with --port)", 1)
    say(f"meshscope serve: snapshot {args.snapshot}")
    print(f"  UI and API          {ui.url}" + ("  (token required)" if args.token else ""), flush=True)
    try:
        _wait_for_stop()
    finally:
        print("meshscope serve: stopping ...", flush=True)
        ui.stop()
    return 0


def _grpc_port(args: argparse.Namespace) -> int | None:
    """--otlp-grpc-port: None (off) for -1; unset follows --otlp-port 0 (any free), else Istio's 4317."""
    if args.otlp_grpc_port is None:
        return 0 if args.otlp_port == 0 else 4317
    return None if args.otlp_grpc_port < 0 else args.otlp_grpc_port


def run(args: argparse.Namespace) -> int:
    import time

    from meshscope import memory

    memory.tune()  # before the threads that allocate start (meshscope/memory.py)

    if args.allowed_host:  # read by dashboard.server.start
        os.environ["MESHSCOPE_ALLOWED_HOSTS"] = ",".join(args.allowed_host)
    if args.snapshot is not None:
        return _serve_snapshot(args)

    # Checked before the cluster modules are imported, so a missing flag is answered at once.
    if not args.prometheus:
        return _fail("--prometheus URL is required (or set MESHSCOPE_PROMETHEUS), e.g. --prometheus http://127.0.0.1:9090")
    if not args.prometheus.startswith(("http://", "https://")):
        return _fail(f"--prometheus must be an http:// or https:// URL, got {args.prometheus!r}")

    from meshscope.cluster import ClusterBackend, ClusterOptions, check_namespaces

    try:
        namespaces = check_namespaces([n for arg in args.namespaces for n in arg.split(",")])
    except ValueError as exc:
        return _fail(f"--namespaces: {exc}")
    from dashboard.access import AccessError, check_bind

    try:
        check_bind(args.host, args.token)
    except AccessError as exc:
        return _fail(str(exc))
    from collector.sources.otlp_auth import OtlpAccessError, check_bind as check_otlp_bind, load_token

    try:  # the receivers listen on --host too: beyond loopback they take telemetry only with a token
        otlp_token = load_token(args.otlp_token_file)
        if not args.otlp_unauthenticated:
            check_otlp_bind(args.host, otlp_token)
    except OtlpAccessError as exc:
        return _fail(str(exc))
    for f in [*args.slo, *([args.alerts] if args.alerts else []), *([args.mesh_config] if args.mesh_config else [])]:
        if not f.is_file():
            return _fail(f"no such file: {f}")
    token = args.prometheus_token
    if args.prometheus_token_file:
        try:
            token = args.prometheus_token_file.read_text().strip()
        except OSError as exc:
            return _fail(f"--prometheus-token-file: cannot read {args.prometheus_token_file}: {exc.strerror}")

    from mesh.config import MeshConfig, MeshConfigError, load_mesh_config

    try:
        mesh_config = load_mesh_config(args.mesh_config) if args.mesh_config else MeshConfig()
    except MeshConfigError as exc:
        return _fail(str(exc))

    from meshscope.app import Stack, StackOptions
    from mesh.kube import KubeError

    _setup_logging(args.verbose)

    from diagnose.terminal_text import terminal_safe

    def say(msg: str) -> None:  # progress and status changes quote the cluster's names and its servers' errors
        print(f"  {terminal_safe(msg)}", flush=True)

    backend = ClusterBackend(ClusterOptions(
        prometheus_url=args.prometheus, kubeconfig=args.kubeconfig, context=args.context, namespaces=namespaces or None,
        config_kubeconfig=args.config_kubeconfig, config_context=args.config_context,
        prometheus_token=token, prometheus_user=args.prometheus_user, prometheus_password=args.prometheus_password,
        prometheus_timeout=args.prometheus_timeout, mesh_config=mesh_config),
        notify=lambda msg: say(f"[{time.strftime('%H:%M:%S')}] {msg}"))
    stack = Stack(backend, StackOptions(host=args.host, port=args.port, otlp_port=args.otlp_port, otlp_host=args.host, data_dir=args.data_dir,
                                        otlp_grpc_port=_grpc_port(args), otlp_token=otlp_token,
                                        otlp_unauthenticated=args.otlp_unauthenticated,
                                        token=args.token, slo_paths=list(args.slo), alerts_config=args.alerts))
    print("meshscope serve: starting ...", flush=True)
    try:
        stack.start(progress=say)
    except KubeError as exc:
        return _fail(f"cannot read the cluster: {exc}", 1)
    except OSError as exc:  # a port in use, an unwritable data dir
        return _fail(f"cannot start: {exc} (UI port {args.port}, OTLP port {args.otlp_port}, data dir {args.data_dir}; "
                     "pick others with --port/--otlp-port/--data-dir)", 1)
    except AccessError as exc:
        return _fail(str(exc))

    _wait_for_stop()  # SIGTERM is `kubectl delete pod`: stop cleanly
    print("meshscope serve: stopping ...", flush=True)
    stack.stop()
    return 0
