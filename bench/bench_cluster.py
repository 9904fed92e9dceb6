"""Real-cluster mode at scale: 10,000 pods, 2,000 services and their Istio config.

The cluster is generated at bench time in a temp dir, in the Kubernetes API's list shape
(injected pods with owner references, ReplicaSets, Deployments, Services, ServiceAccounts,
a VirtualService and DestinationRule per service, PeerAuthentications, AuthorizationPolicies),
and served by the replaying API server in its own process; meshscope reads it with the real
`kubernetes` client, exactly as `meshscope serve` does. The traffic is `topology.synthetic`'s
rate frame for the same workloads (30,000 edges). Everything measured runs in a child
process, so its peak resident memory is this scenario's alone.

Figures: ingest (list + snapshot), first full graph (all appenders, cluster config badges)
vs the same graph without config, incremental refresh vs the full graph, a config change
(watch event -> snapshot rebuilt), decoding a Prometheus answer of that size, peak RSS; and, against a
real Prometheus scraping a synthetic 400-edge target, a 20-point side-panel series asked point by point
(4 instant queries per point) vs by one range query per metric.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMESPACES, SERVICES, WORKLOADS, EDGES = 50, 2_000, 10_000, 30_000
VS_PATH = "/apis/networking.istio.io/v1/virtualservices"


def cluster_docs() -> list[dict]:
    """The cluster's objects (Deployments become ReplicaSets + injected Pods in `list_bodies`)."""
    per_svc = WORKLOADS // SERVICES
    docs: list[dict] = [{"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": f"ns{n}", "labels": {"istio-injection": "enabled"}}}
                        for n in range(NAMESPACES)]
    docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}})
    docs.append({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                 "metadata": {"name": "default", "namespace": "istio-system"}, "spec": {"mtls": {"mode": "STRICT"}}})
    for n in range(NAMESPACES):
        ns = f"ns{n}"
        docs.append({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                     "metadata": {"name": "allow-mesh", "namespace": ns},
                     "spec": {"action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": [f"ns{(n + 1) % NAMESPACES}", ns]}}]}]}})
    for s in range(SERVICES):
        ns, name = f"ns{s % NAMESPACES}", f"svc{s}"
        docs.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}})
        docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
                     "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 8080, "targetPort": 8080}]}})
        docs.append({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": name, "namespace": ns},
                     "spec": {"host": name, "trafficPolicy": {"connectionPool": {"http": {"http1MaxPendingRequests": 100}}},
                              "subsets": [{"name": f"v{k}", "labels": {"version": f"v{k}"}} for k in range(1, per_svc + 1)]}})
        docs.append({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": name, "namespace": ns},
                     "spec": {"hosts": [name], "http": [{"timeout": "5s", "retries": {"attempts": 2},
                                                         "route": [{"destination": {"host": name, "subset": "v1"}, "weight": 90},
                                                                   {"destination": {"host": name, "subset": "v2"}, "weight": 10}]}]}})
    for i in range(WORKLOADS):
        s = i % SERVICES
        ns, app, version = f"ns{s % NAMESPACES}", f"svc{s}", f"v{(i // SERVICES) % per_svc + 1}"
        labels = {"app": app, "version": version}
        docs.append({"apiVersion": "apps/v1", "kind": "Deployment",
                     "metadata": {"name": f"{app}-{version}", "namespace": ns, "labels": labels},
                     "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                              "template": {"metadata": {"labels": labels},
                                           "spec": {"serviceAccountName": app, "containers": [{
                                               "name": app, "image": f"registry.example/{app}:{version}",
                                               "ports": [{"containerPort": 8080}],
                                               "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}}})
    return docs


_SERVERS = """
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from tests.fixtures.kubeapi import KubeAPIServer

folder = Path(sys.argv[1])
kube = KubeAPIServer().start()
kube.load_dir(folder / "kube")
answers = {p.stem: p.read_bytes() for p in (folder / "prom").glob("*.json")}
empty = b'{"status":"success","data":{"resultType":"vector","result":[]}}'

class Prom(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
        if self.path == "/_watch":  # the bench hands the replaying API server a watch event to deliver
            req = json.loads(body)
            kube.script_watch(req["path"], req["events"])
            body = ""
        data = next((v for k, v in answers.items() if k + "%7B" in body or k + "{" in body), empty)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

prom = ThreadingHTTPServer(("127.0.0.1", 0), Prom)
threading.Thread(target=prom.serve_forever, daemon=True).start()
print(kube.url, f"http://127.0.0.1:{prom.server_address[1]}", kube.token, flush=True)
sys.stdin.read()
"""


def prometheus_answer(rates, metric: str, labels: tuple[str, ...] | None = None) -> bytes:
    """The body Prometheus returns for `sum by (labels) (rate(metric[w]))` over this frame."""
    import numpy as np

    from collector import schema as s

    part = rates[rates[s.METRIC] == metric]
    labels = part[list(labels or s.ISTIO_LABELS)].astype(str).to_dict("records")
    if metric.endswith("_bucket"):
        for d, le in zip(labels, part[s.LE]):
            d["le"] = "+Inf" if np.isinf(le) else repr(float(le))
    result = [{"metric": m, "value": [1795220983.123, repr(float(v))]} for m, v in zip(labels, part[s.RATE])]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mib() -> float:
    return _status_mib("VmHWM")


def _rss_mib() -> float:
    return _status_mib("VmRSS")


def _clock(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of fn(): CPU time shows the work when the shared machine is busy.

    fn's result is freed after the clocks stop (freeing a 30,000-edge graph is not building it).
    """
    w, c = time.perf_counter(), time.process_time()
    result = fn()
    wall, cpu = time.perf_counter() - w, time.process_time() - c
    del result
    return wall, cpu


def generate(folder: Path) -> None:
    """Write the cluster (API list bodies), the traffic (rate frame) and Prometheus' answer to `folder`.

    Runs in its own process, so what generation allocates never counts in the measured peak.
    """
    from collector import schema as s
    from meshscope.cluster import BUCKET_LABELS
    from tests.cluster.kubedata import list_bodies, write_dir
    from topology.synthetic import synthetic_rates

    bodies = list_bodies(cluster_docs())
    write_dir(bodies, folder / "kube")
    rates = synthetic_rates(workloads=WORKLOADS, services=SERVICES, edges=EDGES, namespaces=NAMESPACES)
    rates.to_parquet(folder / "rates.parquet")
    (folder / "prom").mkdir()
    answer = prometheus_answer(rates, s.ISTIO_REQUESTS_TOTAL)
    (folder / "prom" / f"{s.ISTIO_REQUESTS_TOTAL}.json").write_bytes(answer)
    n_requests = int((rates[s.METRIC] == s.ISTIO_REQUESTS_TOTAL).sum())
    bucket = s.ISTIO_REQUEST_DURATION_MS + "_bucket"
    n_buckets = int((rates[s.METRIC] == bucket).sum())
    sample = rates[rates[s.METRIC] == bucket].head(10_000)  # the full body would be ~200 MB: size it from a sample
    bucket_mb = len(prometheus_answer(sample, bucket, BUCKET_LABELS)) / len(sample) * n_buckets / 1e6
    (folder / "facts.json").write_text(json.dumps({
        "objects": sum(len(b["items"]) for b in bodies.values()), "requests": n_requests,
        "answer_mb": len(answer) / 1e6, "bucket_mb": bucket_mb, "buckets": n_buckets,
        "vs": dict(bodies[VS_PATH]["items"][0], apiVersion="networking.istio.io/v1", kind="VirtualService")}))


def child(folder: Path) -> None:
    import httpx
    import numpy as np
    import pandas as pd

    from bench.common import report
    from collector import schema as s
    from collector.sources.prom_api import PrometheusClient
    from mesh.kube import api_client
    from meshscope.cluster import ClusterBackend, ClusterOptions
    from topology import build_graph
    from topology.build import GraphBuilder
    from topology.options import GraphOptions

    facts = json.loads((folder / "facts.json").read_text())
    n_objects, n_requests = facts["objects"], facts["requests"]
    rates = pd.read_parquet(folder / "rates.parquet")
    servers = subprocess.Popen([sys.executable, "-c", _SERVERS, str(folder)], cwd=ROOT, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        kube_url, prom_url, token = servers.stdout.readline().split()
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "bench",
               "clusters": [{"name": "c", "cluster": {"server": kube_url}}],
               "users": [{"name": "u", "user": {"token": token}}],
               "contexts": [{"name": "bench", "context": {"cluster": "c", "user": "u"}}]}
        (folder / "kubeconfig").write_text(json.dumps(cfg))
        backend = ClusterBackend(ClusterOptions(prometheus_url=prom_url, debounce_s=0.2),
                                 api_client=api_client(str(folder / "kubeconfig")),
                                 prometheus=PrometheusClient(prom_url, timeout=120))
        before = _rss_mib()
        ingest, ingest_cpu = _clock(backend.start)
        st = backend.status()["kubernetes"]
        report(f"cluster ingest ({n_objects:,} objects: {WORKLOADS:,} pods, {SERVICES:,} services, Istio config)",
               ingest, "s")
        report("cluster ingest, CPU of this process (the API server runs in another)", ingest_cpu, "s")
        report("cluster snapshot build (of the ingest)", st["last_rebuild_s"] * 1000, "ms")
        snap = backend.snapshot()
        assert len(snap.services()) == SERVICES, len(snap.services())

        report("cluster resident memory after ingest", _rss_mib(), "MiB",
               baseline=("before it (imports, rate frame)", before))

        now = time.time()
        wall, cpu = _clock(lambda: build_graph(rates, "workload", None, window_s=60, query_time=now))
        report("cluster first graph without config (30,000 edges, all appenders)", wall, "s")
        report("cluster first graph without config, CPU", cpu, "s")
        builder = GraphBuilder(GraphOptions(graph_type="workload", window_s=60, query_time=now), snapshot=snap)
        box: dict = {}
        wall_cfg, cpu_cfg = _clock(lambda: box.setdefault("g", builder.build(rates)))
        graph = box["g"]
        assert graph.number_of_edges() >= EDGES * 0.9, graph.number_of_edges()
        report("cluster first full graph (30,000 edges, all appenders, cluster config)", wall_cfg, "s",
               baseline=("the same graph without config", wall))
        report("cluster first full graph, CPU", cpu_cfg, "s", baseline=("without config", cpu))
        nxt = rates.copy()
        nxt[s.RATE] = nxt[s.RATE].to_numpy() * np.random.default_rng(1).uniform(0.95, 1.05, len(nxt))
        plain = GraphBuilder(GraphOptions(graph_type="workload", window_s=60, query_time=now))
        plain_graph = plain.build(rates)
        wall_r, cpu_r = _clock(lambda: plain.refresh(plain_graph, nxt))
        report("cluster graph refresh without config (next interval)", wall_r * 1000, "ms",
               baseline=("first graph without config", wall * 1000))
        del plain, plain_graph
        wall_rc, cpu_rc = _clock(lambda: builder.refresh(graph, nxt))
        report("cluster graph refresh with cluster config (next interval)", wall_rc * 1000, "ms",
               baseline=("first full graph", wall_cfg * 1000))
        report("cluster graph refresh with cluster config, CPU", cpu_rc * 1000, "ms")
        report("cluster resident memory with the graph", _rss_mib(), "MiB")
        del graph, builder, box

        # a config change arrives by watch: the snapshot is rebuilt off the request path
        rebuilds = backend.status()["kubernetes"]["rebuilds"]
        vs = facts["vs"]
        vs["metadata"] = dict(vs["metadata"], resourceVersion="99999")
        httpx.post(f"{prom_url}/_watch", json={"path": VS_PATH, "events": [{"type": "MODIFIED", "object": vs}]})
        deadline = time.monotonic() + 120
        while backend.status()["kubernetes"]["rebuilds"] == rebuilds and time.monotonic() < deadline:
            time.sleep(0.05)  # bench only: waiting for the watch to land, not synchronizing a test
        report("cluster config refresh (watch event -> snapshot rebuilt)",
               backend.status()["kubernetes"]["last_rebuild_s"] * 1000, "ms")

        box = {}
        decode, decode_cpu = _clock(lambda: box.setdefault("r", backend.rates(60)))
        got = box.pop("r")
        assert len(got) == n_requests, (len(got), n_requests)
        report(f"cluster rates() from Prometheus JSON ({n_requests:,} request series, {facts['answer_mb']:.0f} MB)",
               decode, "s")
        report("cluster rates() from Prometheus JSON, CPU", decode_cpu, "s")
        del got
        report(f"cluster duration-bucket answer at this size ({facts['buckets']:,} series, not fetched in the bench)",
               facts["bucket_mb"], "MB")
        backend.stop()
        report("cluster peak resident memory (child process)", _peak_rss_mib(), "MiB")
    finally:
        servers.stdin.close()
        servers.wait(timeout=30)


SERIES_EDGES, SERIES_POINTS, SERIES_WINDOW, SERIES_STEP = 400, 20, 4.0, 1.0
_BOUNDS = ("5", "10", "25", "50", "100", "250", "1000", "+Inf")


def _exposition(started: float) -> bytes:
    """Istio counters of SERIES_EDGES edges, both reporters, grown by the seconds since `started`."""
    up = time.time() - started
    lines = []
    for e in range(SERIES_EDGES):
        edge = (f'source_workload="c{e % 40}",source_workload_namespace="ns{e % 5}",source_app="c{e % 40}",'
                f'destination_workload="s{e}-v1",destination_workload_namespace="ns{e % 5}",destination_app="s{e}",'
                f'destination_service="s{e}.ns{e % 5}.svc.cluster.local",destination_service_name="s{e}",'
                f'destination_service_namespace="ns{e % 5}",request_protocol="http",response_flags="-"')
        rps = 1.0 + e % 7
        for reporter in ("source", "destination"):
            lines.append(f'istio_requests_total{{reporter="{reporter}",{edge},response_code="200"}} {rps * up:.3f}')
            lines.append(f'istio_requests_total{{reporter="{reporter}",{edge},response_code="503"}} {0.1 * rps * up:.3f}')
        for i, le in enumerate(_BOUNDS):
            share = 1.0 if le == "+Inf" else 1.0 - 0.5 ** (i + 1)
            lines.append(f'istio_request_duration_milliseconds_bucket{{reporter="destination",{edge},'
                         f'response_code="200",le="{le}"}} {share * rps * up:.3f}')
    return ("\n".join(lines) + "\n").encode()


def series(folder: Path) -> None:
    """A 20-point side-panel series from a real Prometheus: per-point instant queries vs one range query per metric."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import threading

    from bench.common import report
    from collector.sources.prom_api import PrometheusClient
    from meshscope.cluster import RATE_METRICS, ClusterBackend, ClusterOptions
    from tests.fixtures.prometheus import start_prometheus, stop_prometheus

    started = time.time()

    class Target(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            body = _exposition(started)
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # Prometheus gave up on a slow scrape (a busy machine): it tries again next second

    target = ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    (folder / "prom-series").mkdir()
    prom = start_prometheus(folder / "prom-series")
    try:
        prom.set_targets([f"http://127.0.0.1:{target.server_address[1]}/metrics"])
        span = SERIES_WINDOW + SERIES_STEP * SERIES_POINTS + 3
        backend = ClusterBackend(ClusterOptions(prometheus_url=prom.url), prometheus=PrometheusClient(prom.url, timeout=60))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # bench only: waiting for enough history, not synchronizing a test
            if time.time() - started > span and len(backend.rates(SERIES_WINDOW, time.time() - SERIES_STEP * SERIES_POINTS)):
                break
            time.sleep(1)
        end = round(time.time() - 2, 3)
        points = [end - SERIES_STEP * i for i in range(SERIES_POINTS - 1, -1, -1)]

        def per_point():
            return [(t, backend.rates(SERIES_WINDOW, t)) for t in points]

        def ranged():
            return backend.rates_range(SERIES_WINDOW, points[0], end, SERIES_STEP)

        q0 = backend.status()["prometheus"]["queries"]
        old, old_cpu = min(_clock(per_point) for _ in range(3))
        q1 = backend.status()["prometheus"]["queries"]
        new, new_cpu = min(_clock(ranged) for _ in range(3))
        q2 = backend.status()["prometheus"]["queries"]
        rows_old = sum(len(f) for _, f in per_point())
        rows_new = sum(len(f) for _, f in ranged())
        assert rows_old == rows_new, (rows_old, rows_new)
        n = len(RATE_METRICS)
        report(f"cluster series per point ({SERIES_POINTS} points x {n} instant queries, {SERIES_EDGES} edges, real Prometheus)",
               old * 1000, "ms")
        report(f"cluster series by range query ({n} queries for {SERIES_POINTS} points)", new * 1000, "ms",
               baseline=("per-point instant queries", old * 1000))
        report("cluster series by range query, CPU of this process", new_cpu * 1000, "ms",
               baseline=("per-point, CPU", old_cpu * 1000))
        report("cluster series queries sent, per-point path", (q1 - q0) / 3, "queries")
        report("cluster series queries sent, range path", (q2 - q1) / 3, "queries")
        backend.prometheus.close()
    finally:
        stop_prometheus(prom)
        target.shutdown()


def main() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        for step in ("--generate", "--child", "--series"):
            proc = subprocess.run([sys.executable, "-m", "bench.bench_cluster", step, tmp], cwd=ROOT, text=True,
                                  capture_output=True, timeout=1200, env=env)
            sys.stdout.write(proc.stdout)
            if proc.returncode:
                last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
                raise RuntimeError(f"bench_cluster {step} failed: {last}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--generate"]:
        generate(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["--child"]:
        child(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["--series"]:
        series(Path(sys.argv[2]))
    else:
        main()
