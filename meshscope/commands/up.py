"""`meshscope up`: run the bundled demo mesh (Envoy sidecars, demo apps, traffic) until Ctrl-C."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "run the bundled demo mesh (real Envoy sidecars, Bookinfo demo, traffic) until Ctrl-C"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", metavar="NAME", help="apply a fault scenario once the mesh is up "
                        "(see `meshscope scenario list`)")
    parser.add_argument("--rate", type=float, default=5.0, metavar="RPS",
                        help="demo traffic through the gateway, requests per second (default 5; 0 = none)")
    parser.add_argument("--port", type=int, default=8050, help="meshscope UI and API port (default 8050; reserved: this command runs the mesh only)")
    parser.add_argument("--gateway-port", type=int, default=8080, help="ingress gateway port (default 8080)")
    parser.add_argument("--control-port", type=int, default=15080,
                        help="control API for `meshscope apply/delete/scenario` (default 15080)")
    parser.add_argument("--data-dir", type=Path, default=Path(".meshscope"),
                        help="where access logs and run files go (default .meshscope)")
    parser.add_argument("--otlp-endpoint", metavar="URL", help="send sidecar and app traces to this OTLP/HTTP "
                        "endpoint (e.g. http://127.0.0.1:4318)")
    parser.add_argument("-f", "--config", action="append", type=Path, default=[], metavar="FILE",
                        help="extra Istio YAML applied at start (repeatable)")


def run(args: argparse.Namespace) -> int:
    import time

    from mesh.bundled import BundledConfig, BundledMesh, ConfigRejected
    from mesh.scenarios import names

    if args.scenario and args.scenario not in names():
        print(f"meshscope up: unknown scenario {args.scenario!r}; known: {', '.join(names())}")
        return 2
    cfg = BundledConfig(gateway_port=args.gateway_port, control_port=args.control_port, data_dir=args.data_dir,
                        otlp_endpoint=args.otlp_endpoint, traffic_rate=args.rate, scenario=args.scenario,
                        extra_config=list(args.config))
    mesh = BundledMesh(cfg)
    print("meshscope up: starting the bundled mesh (control plane, Envoy sidecars, demo apps) ...", flush=True)
    try:
        mesh.start()
    except ConfigRejected as exc:
        print("meshscope up: the config was refused:\n  " + "\n  ".join(exc.problems))
        return 1
    except (OSError, RuntimeError) as exc:
        print(f"meshscope up: could not start: {exc}")
        return 1
    try:
        st = mesh.status()
        print(f"  ready in {st['ready_seconds']:.2f}s")
        print(f"  gateway      {st['gateway']}")
        print(f"  control API  {st['control_api']}  (meshscope apply -f FILE | scenario apply NAME)")
        print(f"  traces       {st['otlp_endpoint'] or 'off (--otlp-endpoint URL)'}")
        print(f"  logs         {mesh.log_dir}")
        for w in st["workloads"]:
            print(f"  {w['namespace']}/{w['name']:<22} admin {w['admin']}/stats/prometheus")
        if mesh.scenario:
            print(f"  scenario     {mesh.scenario}")
        print("Ctrl-C to stop.", flush=True)
        while True:
            time.sleep(10)
            if mesh.traffic:
                t = mesh.traffic.snapshot()
                codes = ", ".join(f"{k}: {v}" for k, v in sorted(t["codes"].items()))
                print(f"  traffic: {t['sent']} sent ({codes}){', ' + str(t['errors']) + ' errors' if t['errors'] else ''}",
                      flush=True)
    except KeyboardInterrupt:
        print("\nmeshscope up: stopping ...", flush=True)
    finally:
        mesh.stop()
    return 0
