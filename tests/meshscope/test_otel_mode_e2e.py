"""The cluster path, proven on one machine: the bundled mesh in its OpenTelemetry mode, read like `serve` reads.

One mesh, started once for this module, with no access-log files: every sidecar ships its access logs
through Envoy's OpenTelemetry access logger (Istio's envoyOtelAls shape) and its traces over OTLP/gRPC
to meshscope's receiver; metrics are read back through a real Prometheus with the PromQL `serve` sends;
config comes through the `Backend` interface the `serve` stack uses. Every built-in scenario must be
diagnosed with the same code, caller and blamed object as the file-tailing mode (the scenario's own
declaration, which tests/diagnose/runtime/test_scenarios_e2e.py checks for the file mode), and the flag
alone (keep-alive race) must never read as an mTLS mismatch.
"""
from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx
import pandas as pd
import pytest

from mesh.bundled import BundledConfig
from mesh.controlplane.registry import free_local_port
from mesh.scenarios import SCENARIOS
from meshscope.app import Stack, StackOptions
from meshscope.otel_backend import OtelBundledBackend
from tests.util import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RUNTIME_SCENARIOS = [s for s in SCENARIOS if any(c.startswith("MS3") for c in s.expected_codes)]


@pytest.fixture(scope="module")
def otel_stack(tmp_path_factory, prometheus, shared_mesh_idle):
    data = tmp_path_factory.mktemp("otel-mode")
    cfg = BundledConfig(gateway_port=free_local_port(), control_port=None, data_dir=data / "mesh", traffic_rate=10.0,
                        ready_timeout=120.0)
    backend = OtelBundledBackend(cfg, prometheus.url, grpc_port=0, on_targets=prometheus.set_targets)
    stack = Stack(backend, StackOptions(port=0, otlp_port=0, data_dir=data / "stack", ui=False, diagnose_interval=0.5))
    stack.start()
    # the module's time is the diagnoser's cycles (2-3 per scenario, each 0.1-0.5 s of CPU) and the pause the
    # product puts after each (4x its CPU, so the UI keeps answering): no UI here, so half of a core may go to them
    stack.diagnoser.max_busy_share = 0.5
    try:
        wanted = {urlsplit(t.url).netloc for t in backend.mesh.scrape_targets()}
        seen: set[str] = set()

        def every_sidecar_scraped_once() -> bool:
            # each target scraped successfully at least once (not all "up" at one instant: on a loaded machine a
            # sidecar's /stats/prometheus now and then misses the 900 ms scrape timeout and that target flaps)
            data = httpx.get(f"{prometheus.url}/api/v1/targets", params={"state": "active"}, timeout=5).json()["data"]
            seen.update(t["labels"].get("instance", "") for t in data["activeTargets"] if t["health"] == "up")
            return wanted <= seen

        try:
            wait_until(every_sidecar_scraped_once, timeout=120, interval=0.5, what="prometheus scraping every sidecar")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; never scraped: {sorted(wanted - seen)}") from None
        yield stack
    finally:
        stack.stop()
        prometheus.set_targets([])


def _export_calls() -> dict[str, float]:
    """meshscope's own count of OTLP/gRPC Export calls by signal and status (refusals show here)."""
    from collector.selfmetrics import OTLP_GRPC_REQUESTS

    return {f"{m.labels['signal']}/{m.labels['status']}": m.value for metric in OTLP_GRPC_REQUESTS.collect()
            for m in metric.samples if m.name.endswith("_total")}


def _callers(f) -> set[str]:
    return {e.get("source_workload") for e in f.evidence.get("edges", []) + f.evidence.get("client_edges", [])}


def _started(f) -> float:
    """When the earliest request a finding counts was made (epoch seconds)."""
    start = (f.evidence.get("time_range") or {}).get("start")
    return pd.Timestamp(start).timestamp() if start else float("inf")


def _open(diag, code: str, dst: str):
    return [f for f in diag.findings(status="open") if f.code == code and f.evidence.get("edge_key") == dst]


def test_every_scenario_is_diagnosed_as_in_the_file_mode(otel_stack):
    mesh, diag, store, backend = otel_stack.backend.mesh, otel_stack.diagnoser, otel_stack.store, otel_stack.backend
    # no log files at all; per-request rows, spans and Prometheus rates all arrive through the cluster pipes
    assert mesh.access_logs() == []
    assert not [w.name for w in mesh.workloads if (mesh.log_dir / f"{w.namespace}.{w.name}.log").exists()]
    def workloads_seen() -> set[str]:
        r = store.requests()
        return set(r["source_workload"]) | set(r["destination_workload"]) if r is not None and len(r) else set()

    def reporters() -> set[str]:
        r = store.requests()
        return set(r["reporter"]) if r is not None and len(r) else set()

    # both reporters too: a client sidecar's rows name both ends, so every workload can be seen before any server
    # sidecar's rows arrived (each Envoy ships its access logs on its own OpenTelemetry logger's flush)
    wait_until(lambda: {"productpage-v1", "details-v1", "reviews-v1", "ratings-v1"} <= workloads_seen()
               and {"source", "destination"} <= reporters(), timeout=90,
               what="access-log rows of every workload, with their identity, from both reporters over OTLP/gRPC")
    assert {"source", "destination"} <= set(store.requests()["reporter"])
    wait_until(lambda: len(store.spans()) > 0, timeout=60, what="sidecar spans over OTLP/gRPC")
    wait_until(lambda: len(backend.rates(30.0)) > 0, timeout=60, what="Istio rates read back from Prometheus")

    seen: dict[str, str] = {}
    for sc in RUNTIME_SCENARIOS:
        want = next(c for c in sc.expected_codes if c.startswith("MS3"))
        dst = sc.edge[1]
        # start clean for this edge: an earlier scenario's finding of the same kind must not count
        wait_until(lambda: not _open(diag, want, dst), timeout=90, interval=0.2, what=f"{want} on {dst} closed")
        if want == "MS3014":  # a latency anomaly needs the usual latency first
            wait_until(lambda: dst in diag.latency_baseline, timeout=90, interval=0.2, what=f"latency baseline {dst}")
        t0, applied_at = time.monotonic(), time.time()
        n0 = diag.last_evaluation.get("count", 0)
        mesh.apply_scenario(sc.name)
        try:
            try:
                found = wait_until(lambda: _open(diag, want, dst), timeout=120, interval=0.2, what=f"{want} for {sc.name}")
            except AssertionError as exc:  # say what the diagnoser and the store saw instead
                r = store.requests(time.time() - 30, time.time())
                flags = r[r["destination_service"] == dst]["response_flags"].value_counts().to_dict() if len(r) else {}
                everything = store.requests()
                newest = everything["start_time"].max() if len(everything) else None
                rx = backend.receiver
                raise AssertionError(f"{exc}; open: {[(x.code, x.evidence.get('edge_key')) for x in diag.findings(status='open')]}"
                                     f"; flags toward {dst} in the last 30 s: {flags}; rows stored {len(everything)}, "
                                     f"newest {newest} (now {time.time():.0f}); receiver rows {rx.requests_received}, "
                                     f"rejected {rx.records_rejected}, store errors {rx.store_errors}; Export calls "
                                     f"{_export_calls()}") from None
            f = found[0]
            # the caller is named once its own rows are in: the server's rows may be read first, or another caller
            # of the same service may trip first; evidence is refreshed every evaluation, so poll the open finding
            f = wait_until(lambda: (x := diag.finding(f.fingerprint)) is not None and x.status == "open"
                           and sc.edge[0] in _callers(x) and x, timeout=30, interval=0.2,
                           what=f"{sc.edge[0]} among the callers of {want} for {sc.name} (first: {sorted(_callers(f))})")
            for flag in sc.expected_flags:
                assert flag in f.evidence.get("response_flags", {}), (sc.name, f.evidence.get("response_flags"))
            # where the evidence came from is always said (an evaluation whose window had no log rows yet infers)
            assert f.evidence["evidence_source"] in ("seen in access logs", "inferred from metrics")
            if sc.blame:
                kind, ref = sc.blame.split(" ", 1)
                ns, name = ref.split("/")
                assert (f.resource.kind, f.resource.namespace, f.resource.name) == (kind, ns, name), (sc.name, f.resource)
                assert f.resource.source
            if "MS3001" not in sc.expected_codes:  # the UC flag alone never reads as an mTLS mismatch
                # (an earlier scenario's finding may still be open while its failures leave the window)
                # (and once re-blamed after the config changed back it is a new finding: judge by its requests' times)
                assert not [x for x in _open(diag, "MS3001", dst) if x.first_seen >= applied_at and
                            _started(x) >= applied_at], sc.name
            seen[sc.name] = (f"{want} after {time.monotonic() - t0:.1f}s ({f.evidence['evidence_source']}), "
                             f"{diag.last_evaluation.get('count', 0) - n0} cycles, the last {diag.last_evaluation.get('seconds', 0):.1f} s")
            print(f"\n{sc.name}: {seen[sc.name]}", flush=True)
        finally:
            mesh.clear_scenario()
    print("\n" + "\n".join(f"{k}: {v}" for k, v in seen.items()))
    assert set(seen) == {s.name for s in RUNTIME_SCENARIOS}
