"""Access-log rotation with a real Envoy: rename + POST /reopen_logs, while the tailer follows,
and across a tailer restart; every request is stored exactly once and the disk stays bounded."""
from __future__ import annotations

import httpx

from collector import schema as s
from collector.sources.access_log import AccessLogTailer, LogFile
from collector.store import TelemetryStore
from mesh.dataplane.logrotate import LogRotator, RotatedLog, RotationPolicy
from tests.collector.envoy_static import static_envoy
from tests.util import wait_until


def _reopen(envoy):
    return lambda: (lambda r: (r.status_code, r.text))(httpx.post(envoy.admin_url + "/reopen_logs", timeout=5))


def test_rotation_by_size_with_a_real_envoy_loses_and_repeats_nothing(tmp_path):
    policy = RotationPolicy(max_bytes=3000, keep=2, max_age_s=10**9)
    with static_envoy(tmp_path) as envoy:
        logs = [RotatedLog(envoy.json_log, _reopen(envoy)), RotatedLog(envoy.text_log, _reopen(envoy))]
        rotator = LogRotator(lambda: logs, policy)
        store = TelemetryStore(tmp_path / "store", window_s=10**10)
        state = tmp_path / "offsets.json"
        files = [LogFile(str(envoy.json_log), "productpage-v1", "bookinfo", format="json")]
        tailer = AccessLogTailer(files, store, state_path=state)
        sent = 0

        def send_and_flush(n: int) -> None:
            """n requests (one access-log line each), then wait until Envoy has written them."""
            nonlocal sent
            base = _live_lines(envoy)
            envoy.get("/ok", n)
            sent += n
            wait_until(lambda: _live_lines(envoy) >= base + n, timeout=30, what="access log lines flushed")

        for round_ in range(6):
            send_and_flush(10)
            wait_until(lambda: tailer.poll() >= 0 and len(store.requests()) >= sent, timeout=30, what="lines tailed")
            rotator.check()
        tailer.stop()  # down across two rotations: its file is now <log>.2, found again by inode
        for _ in range(2):
            send_and_flush(10)
            rotator.check()
        send_and_flush(5)
        tailer = AccessLogTailer(files, store, state_path=state)
        wait_until(lambda: tailer.poll() >= 0 and len(store.requests()) >= sent, timeout=30, what="every request stored")
        tailer.stop()
        ids = list(store.requests()[s.REQUEST_ID])
        assert len(ids) == sent and len(set(ids)) == sent
        assert rotator.rotations >= 8 and rotator.failures == 0
        generations = sorted(p.name for p in tmp_path.glob("access.json.log.*"))
        assert generations == ["access.json.log.1", "access.json.log.2"]  # older ones deleted
        files_now = list(tmp_path.glob("access.json.log*"))
        on_disk = sum(p.stat().st_size for p in files_now)
        longest = max(len(line) + 1 for p in files_now for line in p.read_bytes().splitlines())
        # each generation holds at most max_bytes plus what one check interval wrote (10 lines here)
        assert on_disk <= (policy.keep + 1) * (policy.max_bytes + 10 * longest)
        store.close()


def _live_lines(envoy) -> int:
    try:
        return envoy.json_log.read_bytes().count(b"\n")
    except FileNotFoundError:  # rotated, and Envoy has not written (so not re-created) it yet
        return 0


def test_age_rotation_and_a_failed_reopen_are_reported(tmp_path):
    now = [1000.0]
    log = tmp_path / "a.log"
    log.write_text("x\n")
    calls = []
    rotator = LogRotator(lambda: [RotatedLog(log, lambda: calls.append(1) or (200, ""))],
                         RotationPolicy(max_bytes=10**9, max_age_s=60, keep=1), clock=lambda: now[0])
    assert rotator.check() == 0  # first seen now: not old yet
    now[0] += 61
    assert rotator.check() == 1 and calls == [1]
    assert (tmp_path / "a.log.1").read_text() == "x\n" and not log.exists()
    log.write_text("y\n")
    bad = LogRotator(lambda: [RotatedLog(log, lambda: (503, "no"))], RotationPolicy(max_bytes=1, keep=1))
    assert bad.check() == 0 and bad.failures == 1
    assert (tmp_path / "a.log.1").read_text() == "y\n"  # keep=1: the older generation was dropped
