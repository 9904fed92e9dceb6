"""Delivery against a real receiver process: signatures, retries on 5xx and hangs, no retry on 4xx, a receiver restart."""
import pytest

from diagnose.alerts import AlertDispatcher, AlertsConfig, ReceiverConfig
from diagnose.alerts.delivery import backoff, classify

from tests.diagnose.alerts.findings_data import route_finding, runtime_finding
from tests.diagnose.alerts.sink import Sink
from tests.util import wait_until

SECRET = "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seQ=="


@pytest.fixture
def sink(tmp_path):
    s = Sink(tmp_path, secret=SECRET)
    yield s
    s.stop()


def dispatcher(tmp_path, sink, **rec_kw):
    kw = dict(group_by=["..."], group_wait=0, group_interval=0.2, timeout=1.0, secret=SECRET)
    kw.update(rec_kw)
    cfg = AlertsConfig([ReceiverConfig(name="hook", url=sink.url, **kw)])
    return AlertDispatcher(cfg, tmp_path / "data", backoff_base=0.05, backoff_cap=0.3, tick_s=0.05)


def test_retries_through_5xx_and_a_hang_with_one_id_and_valid_signatures(tmp_path, sink):
    sink.start(plan="500,503,hang,200", hang_seconds=30)
    d = dispatcher(tmp_path, sink)
    try:
        d.process([route_finding()])
        outcomes = []
        wait_until(lambda: outcomes.extend(d.deliver_due()) or any(a.outcome == "delivered" for _, a in outcomes),
                   timeout=30, what="delivery after retries")
        reqs = sink.requests()
        assert [r["action"] for r in reqs] == ["500", "503", "hang", "200"]
        assert [a.outcome for _, a in outcomes] == ["retry", "retry", "retry", "delivered"]
        assert "timeout" in outcomes[2][1].error
        assert len({r["headers"]["webhook-id"] for r in reqs}) == 1
        assert all(r["valid_signature"] for r in reqs)
        assert reqs[-1]["body"]["alerts"][0]["labels"]["name"] == "reviews"
        assert d.outbox.counts() == {"hook": {"delivered": 1}}
    finally:
        d.close()


def test_4xx_is_not_retried_and_a_bad_signature_is_refused(tmp_path, sink):
    sink.start(plan="400")
    d = dispatcher(tmp_path, sink)
    try:
        d.process([route_finding("a")])
        (n, attempt), = d.deliver_due()
        assert attempt.outcome == "failed" and attempt.status == 400
        assert d.deliver_due(now=d.clock() + 3600) == []  # never tried again
        assert len(sink.requests()) == 1
    finally:
        d.close()
    # a sender with the wrong secret: the receiver answers 401, which is permanent
    d = dispatcher(tmp_path / "other", sink, secret="whsec_d3Jvbmcta2V5")
    try:
        d.process([route_finding("b")])
        (n, attempt), = d.deliver_due()
        assert attempt.outcome == "failed" and attempt.status == 401
        assert sink.requests()[-1]["valid_signature"] is False
    finally:
        d.close()


def test_receiver_restarted_mid_stream_misses_nothing(tmp_path, sink):
    sink.start()
    d = dispatcher(tmp_path, sink).start()
    try:
        edges = [f"web-{i}->details" for i in range(12)]
        for i, edge in enumerate(edges):
            d.process([runtime_finding(e) for e in edges[: i + 1]])
            if i == 3:
                wait_until(lambda: len(sink.delivered()) >= 4, timeout=60, what="first notifications")
                sink.stop()  # receiver goes away mid-stream...
            if i == 8:
                sink.start()  # ...and comes back on the same port
        d.process([])  # everything recovers: resolved notices for all 12

        def all_resolved():
            seen = {}
            for r in sink.delivered():
                for a in r["body"]["alerts"]:
                    seen.setdefault(a["labels"]["edge"], set()).add(a["status"])
            return all(seen.get(e) == {"firing", "resolved"} for e in edges)

        try:
            wait_until(all_resolved, timeout=60, what="every edge delivered firing and resolved")
        except AssertionError as exc:  # say where things stood
            raise AssertionError(f"{exc}; outbox {d.outbox.counts()}; sink saw {[r['action'] for r in sink.requests()]}") from None
        # a notice whose answer was lost when the receiver went away is sent again (at least once): wait for it
        wait_until(lambda: d.outbox.counts()["hook"] == {"delivered": 24}, timeout=60,
                   what=f"all 24 notifications marked delivered (now {d.outbox.counts()['hook']})")
        assert any(r["action"] == "200" for r in sink.requests() if r["pid"] != sink.requests()[0]["pid"])
    finally:
        d.close()


def test_classification_and_backoff():
    assert classify(204).outcome == "delivered"
    assert classify(429, retry_after="7").retry_after == 7
    assert classify(502).outcome == "retry" and classify(404).outcome == "failed"
    delays = [backoff(n, base=1, cap=30) for n in range(1, 8)]
    assert 0.8 <= delays[0] <= 1.2 and 3.2 <= delays[2] <= 4.8 and all(d <= 36 for d in delays)


def test_unreachable_receiver_is_retried_with_backoff_until_max_retry_age(tmp_path):
    from diagnose.alerts import selfmetrics
    from tests.util import free_port

    now = [1000.0]
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: connection refused
    cfg = AlertsConfig([ReceiverConfig(name="gone", url=url, group_by=["..."], group_wait=0, max_retry_age=60, timeout=1)])
    d = AlertDispatcher(cfg, tmp_path / "data", clock=lambda: now[0], backoff_base=2, backoff_cap=20)
    try:
        d.process([route_finding()])
        times = []
        while not d.outbox.entries(state="expired") and now[0] < 1200:
            if d.deliver_due():
                times.append(now[0])
            now[0] += 0.5
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert len(times) >= 4 and times[-1] > 1060
        assert all(g2 >= g1 for g1, g2 in zip(gaps[:3], gaps[1:4]))  # the waits grow
        assert max(gaps) <= 20 * 1.2 + 0.5  # capped
        (expired,) = d.outbox.entries(state="expired")
        assert "ConnectError" in expired.last_error and expired.attempts == len(times)
        assert selfmetrics.REGISTRY.get_sample_value("meshscope_alert_delivery_attempts_total", {"receiver": "gone", "outcome": "expired"}) == 1
        assert selfmetrics.REGISTRY.get_sample_value("meshscope_alert_outbox_pending", {"receiver": "gone"}) == 0
    finally:
        d.close()


def test_from_file_skips_bad_receivers_and_reports_them(tmp_path):
    path = tmp_path / "alerts.yaml"
    path.write_text("receivers:\n  - {name: ok, url: 'http://127.0.0.1:1/'}\n  - {name: bad, url: 'http://127.0.0.1:1/', format: pager}\n")
    d, loaded = AlertDispatcher.from_file(path, tmp_path / "data")
    try:
        assert list(d.receivers) == ["ok"] and "pager" in str(loaded.problems[0])
    finally:
        d.close()


def test_retry_after_from_the_receiver_is_honoured(tmp_path, sink):
    sink.start(plan="429:2")
    d = dispatcher(tmp_path, sink)
    d.backoff_base = 0.01
    try:
        d.process([route_finding()])
        (_, first), = d.deliver_due()
        assert first.outcome == "retry" and first.status == 429 and first.retry_after == 2
        assert d.deliver_due(now=d.clock() + 1.5) == []  # our own backoff (10 ms) would have retried already
        (_, second), = d.deliver_due(now=d.clock() + 2.5)
        assert second.outcome == "delivered"
    finally:
        d.close()


@pytest.mark.parametrize("fmt", ["webhook", "slack", "amwebhook"])
def test_each_format_reaches_a_real_receiver(tmp_path, sink, fmt):
    if fmt == "slack":  # Slack incoming webhooks are not signed: a receiver without a secret
        sink.secret = None
    sink.start()
    d = dispatcher(tmp_path, sink, format=fmt, secret=sink.secret)
    try:
        d.process([route_finding("reviews"), runtime_finding("web->details")])
        wait_until(lambda: len(d.deliver_due()) == 0 and len(sink.delivered()) == 2, timeout=60, what=f"{fmt} deliveries")
        bodies = [r["body"] for r in sink.delivered()]
        assert all(r["valid_signature"] is (None if fmt == "slack" else True) for r in sink.requests())
        if fmt == "slack":
            assert all(b["blocks"][0]["type"] == "header" and b["text"] for b in bodies)
        elif fmt == "amwebhook":
            assert {b["version"] for b in bodies} == {"4"} and {b["alerts"][0]["labels"]["code"] for b in bodies} == {"MS1001", "MS3001"}
        else:
            assert {b["alerts"][0]["finding"]["code"] for b in bodies} == {"MS1001", "MS3001"}
    finally:
        d.close()
