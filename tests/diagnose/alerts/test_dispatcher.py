"""The dispatcher's bookkeeping with an explicit clock: what the live loop hands it, what it persists, when."""
from diagnose.alerts import AlertDispatcher, AlertsConfig, ReceiverConfig

from tests.diagnose.alerts.findings_data import route_finding, slo_finding


def make(tmp_path, now, **kw):
    rec = ReceiverConfig(name="r", url="http://127.0.0.1:9/never", group_by=["..."], **kw)
    return AlertDispatcher(AlertsConfig([rec]), tmp_path / "data", clock=lambda: now[0])


def test_resolved_findings_from_the_live_loop_count_as_recovered(tmp_path):
    now = [100.0]
    d = make(tmp_path, now, group_wait=0, group_interval=10)
    try:
        done = slo_finding("details")
        done.status = "resolved"
        queued = d.process([route_finding(), done])
        assert [n.alerts[0].labels["name"] for n in queued] == ["reviews"]
        # persisted before any attempt: nothing has been sent yet
        (entry,) = d.outbox.entries(state="pending")
        assert entry.attempts == 0 and entry.notification.id == queued[0].id
        still = route_finding()
        still.status = "resolved"
        now[0] = 110.0
        (resolved,) = d.process([still])
        assert resolved.alerts[0].status == "resolved" and resolved.alerts[0].ends_at == 110.0
    finally:
        d.close()


def test_group_wait_is_kept_by_the_flush_not_by_process(tmp_path):
    now = [0.0]
    d = make(tmp_path, now, group_wait=30, group_interval=60)
    try:
        assert d.process([route_finding()]) == []
        now[0] = 29.0
        assert d.flush() == [] and d.process([route_finding()]) == []
        now[0] = 30.0
        (n,) = d.flush()
        assert n.created_at == 30.0 and n.alerts[0].starts_at == 0.0
        assert d.status() == {"receivers": {"r": {"pending": 1}}, "groups": 1}
    finally:
        d.close()
