"""asm-rate-limit on the shared bundled mesh: real Envoy's local rate limit answers as ASM's does, and the
live diagnoser names the ASMLocalRateLimiter, its quota and the traffic it cut (MS6020)."""
from __future__ import annotations

import pytest

from collector.sources.access_log import AccessLogTailer, LogFile
from collector.store import TelemetryStore
from diagnose.live import LiveDiagnoser, LiveSources
from tests.mesh.evidence import LogCursor
from tests.util import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_asm_rate_limit_429s_are_attributed_to_the_limiter(bundled_mesh, mesh_scenario, tmp_path):
    server = LogCursor(bundled_mesh, "ratings-v1")
    store = TelemetryStore(data_dir=tmp_path / "store", window_s=900)
    tailer = AccessLogTailer(lambda: [LogFile(a.path, a.workload, a.namespace, a.principal, a.format)
                                      for a in bundled_mesh.access_logs()], store, interval=0.2)
    diag = LiveDiagnoser(LiveSources.from_store(store, snapshot=bundled_mesh.snapshot), interval_s=0.5,
                         window_s=10.0, ingest_lag_s=0.5, resolve_after=2)
    tailer.start()
    diag.start()
    try:
        sc = mesh_scenario("asm-rate-limit")
        # Envoy's own evidence on the limited proxy: 429, RL, local_rate_limited
        limited = wait_until(lambda: [r for r in server.records() if r.get("response_flags") == "RL"],
                             timeout=60, what="RL records on ratings' inbound side")
        assert limited[0]["response_code"] == 429
        assert limited[0]["response_code_details"] == "local_rate_limited"
        found = wait_until(lambda: [f for f in diag.findings(status="open") if f.code == "MS6020"
                                    and f.evidence.get("edge_key") == sc.edge[1]],
                           timeout=60, interval=0.2, what="MS6020 on ratings")
        f = found[0]
        assert sc.blame in f.message and "quota 2 per 1s per proxy" in f.message
        assert f"{f.resource.kind} {f.resource.namespace}/{f.resource.name}" == sc.blame and f.resource.source
        assert 0 < f.impact["share"] < 1  # the bucket lets some requests through: it cuts, not blocks
    finally:
        diag.stop()
        tailer.stop()
        store.close()


def test_asm_circuit_breaker_status_is_attributed_to_the_breaker(bundled_mesh, mesh_scenario, tmp_path):
    client = LogCursor(bundled_mesh, "reviews-v2")
    store = TelemetryStore(data_dir=tmp_path / "store", window_s=900)
    tailer = AccessLogTailer(lambda: [LogFile(a.path, a.workload, a.namespace, a.principal, a.format)
                                      for a in bundled_mesh.access_logs()], store, interval=0.2)
    diag = LiveDiagnoser(LiveSources.from_store(store, snapshot=bundled_mesh.snapshot), interval_s=0.5,
                         window_s=10.0, ingest_lag_s=0.5, resolve_after=2)
    tailer.start()
    diag.start()
    try:
        sc = mesh_scenario("asm-circuit-breaker")
        # the client sidecar answers itself with the breaker's status while ratings keeps failing
        broken = wait_until(lambda: [r for r in client.records() if r.get("response_code") == 499],
                            timeout=60, what="local 499s on reviews-v2 -> ratings")
        assert broken[0]["response_code_details"] != "via_upstream"
        assert {r.get("response_code_details") for r in broken} == {"denied_by_admission_control"}
        found = wait_until(lambda: [f for f in diag.findings(status="open") if f.code == "MS6021"
                                    and f.evidence.get("edge_key") == sc.edge[1]],
                           timeout=60, interval=0.2, what="MS6021 on ratings")
        f = found[0]
        breaker = "ASMCircuitBreaker bookinfo/reviews-to-ratings"
        assert breaker in f.message and "errors over 50% in 10s" in f.message and "status 499" in f.message
        assert f"{f.resource.kind} {f.resource.namespace}/{f.resource.name}" == breaker and f.resource.source
    finally:
        diag.stop()
        tailer.stop()
        store.close()
