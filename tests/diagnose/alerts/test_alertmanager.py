"""meshscope -> a real Alertmanager 0.25: alerts show up in its API, resolve when the finding recovers,
and Alertmanager's own webhook payload has the shape our amwebhook sink sends."""
import httpx

from diagnose.alerts import AlertDispatcher, AlertsConfig, ReceiverConfig, amwebhook
from diagnose.alerts import alertmanager as alertmanager_sink
from diagnose.alerts.delivery import send
from diagnose.alerts.grouping import Grouper
from diagnose.alerts.model import Alert, Notification, alert_from_finding

from tests.diagnose.alerts.findings_data import route_finding, slo_finding
from tests.diagnose.alerts.sink import Sink
from tests.fixtures.alertmanager import start_alertmanager
from tests.util import wait_until


def test_alerts_appear_in_alertmanager_and_resolve(tmp_path, alertmanager):
    rec = ReceiverConfig.for_format("am", alertmanager.url, "alertmanager", group_interval=0.2)
    d = AlertDispatcher(AlertsConfig([rec], external_url="http://127.0.0.1:8050"), tmp_path / "data",
                        backoff_base=0.05, tick_s=0.05).start()
    try:
        d.process([route_finding("reviews"), slo_finding("ratings")])
        alerts = wait_until(lambda: len(alertmanager.alerts()) == 2 and alertmanager.alerts(), timeout=60, what="2 alerts in Alertmanager")
        by_name = {a["labels"]["name"]: a for a in alerts}
        assert by_name["reviews"]["labels"]["alertname"] == "MS1001"
        assert by_name["ratings"]["labels"]["category"] == "slo"
        assert by_name["ratings"]["annotations"]["fingerprint"] == "MS4001|Service bookinfo/ratings|"
        assert by_name["reviews"]["status"]["state"] == "active"
        assert by_name["reviews"]["generatorURL"].startswith("http://127.0.0.1:8050/findings")
        groups = alertmanager.get("/api/v2/alerts/groups")
        assert sum(len(g["alerts"]) for g in groups) == 2

        d.process([slo_finding("ratings")])  # reviews recovered
        wait_until(lambda: [a["labels"]["name"] for a in alertmanager.alerts()] == ["ratings"], timeout=60,
                   what="reviews resolved in Alertmanager")
        assert d.outbox.counts()["am"].get("failed", 0) == 0
    finally:
        d.close()


def test_alertmanager_rejection_is_classified_permanent(alertmanager):
    # Alertmanager refuses an alert without labels with 400: that must count as a permanent failure
    rec = ReceiverConfig.for_format("am", alertmanager.url, "alertmanager")
    bad = Notification("msg_x", "am", "{}", {}, [Alert("fp", {}, {"summary": "no labels"})], 0.0)
    with httpx.Client() as client:
        attempt = send(client, alertmanager_sink.render(bad, rec, 0.0), timeout=5)
    assert attempt.outcome == "failed" and attempt.status == 400 and "label" in attempt.error
    assert alertmanager.alerts() == []


def test_amwebhook_payload_matches_what_alertmanager_itself_sends(tmp_path):
    sink = Sink(tmp_path).start()
    am = None
    try:
        am = start_alertmanager(tmp_path / "am", webhook_url=sink.url)
        # post through our v2 sink; Alertmanager then notifies the sink with its own v4 webhook payload
        rec = ReceiverConfig.for_format("am", am.url, "alertmanager")
        d = AlertDispatcher(AlertsConfig([rec]), tmp_path / "data", backoff_base=0.05)
        d.process([route_finding("reviews")])
        d.deliver_due()
        d.close()
        theirs = wait_until(lambda: sink.delivered() and sink.delivered()[0]["body"], timeout=60, what="Alertmanager webhook")
        g = Grouper([ReceiverConfig(name="sink", url=sink.url, group_wait=0)])
        g.observe([alert_from_finding(route_finding("reviews"), 0)], 0)
        ours = amwebhook.payload(g.flush(0)[0], am.url)
        assert set(ours) == set(theirs)
        assert set(ours["alerts"][0]) == set(theirs["alerts"][0])
        assert ours["version"] == theirs["version"] == "4"
        assert ours["groupKey"] == theirs["groupKey"] == '{}:{alertname="MS1001"}'
        assert ours["alerts"][0]["labels"] == theirs["alerts"][0]["labels"]
        assert ours["alerts"][0]["fingerprint"].isalnum() and len(ours["alerts"][0]["fingerprint"]) == len(theirs["alerts"][0]["fingerprint"])
        assert ours["alerts"][0]["endsAt"] == theirs["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    finally:
        if am is not None:
            am.stop()
        sink.stop()
