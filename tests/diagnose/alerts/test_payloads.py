"""Each sink's wire format: signed generic JSON, Slack blocks, Alertmanager v2 array, Alertmanager webhook v4."""
import json

from diagnose.alerts import alertmanager, amwebhook, slack, webhook
from diagnose.alerts.config import ReceiverConfig
from diagnose.alerts.grouping import Grouper
from diagnose.alerts.model import GO_ZERO_TIME, alert_from_finding
from diagnose.alerts.signing import sign, verify

from tests.diagnose.alerts.findings_data import route_finding, slo_finding

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

# the keys of the payload Alertmanager 0.25 posted to a sink (reference capture, slo-alerting.md §5.1)
AM_V4_KEYS = {"receiver", "status", "alerts", "groupLabels", "commonLabels", "commonAnnotations", "externalURL",
              "version", "groupKey", "truncatedAlerts"}
AM_V4_ALERT_KEYS = {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}


def notification(rec, findings, resolve_after=None):
    g = Grouper([rec])
    g.observe([alert_from_finding(f, 1000.0) for f in findings], 1000.0)
    if resolve_after is not None:
        g.flush(1000.0)
        g.observe([alert_from_finding(f, 1000.0) for f in findings[:resolve_after]], 1010.0)
        return g.flush(1000.0 + rec.group_interval)[0]
    return g.flush(1000.0)[0]


def test_standard_webhooks_known_answer():
    # the published Standard Webhooks example vector
    body = b'{"test": 2432232314}'
    assert sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    sig = sign(SECRET, "msg_1", 1614265330, body)
    assert verify(SECRET, "msg_1", 1614265330, body, "v1,bogus " + sig, now=1614265330 + 10)
    assert not verify(SECRET, "msg_1", 1614265330, body + b" ", sig)
    assert not verify(SECRET, "msg_1", 1614265330, body, sig, now=1614265330 + 3600)  # replayed too late


def test_generic_webhook_is_signed_and_stable_across_retries():
    rec = ReceiverConfig(name="hook", url="http://127.0.0.1:1/h", secret=SECRET, group_by=["namespace"], group_wait=0)
    n = notification(rec, [route_finding(), slo_finding()])
    r1 = webhook.render(n, rec, 2000.0)
    r2 = webhook.render(n, rec, 2060.0)
    assert r1.body == r2.body and r1.headers["webhook-id"] == r2.headers["webhook-id"] == n.id
    assert r1.headers["webhook-signature"] != r2.headers["webhook-signature"]
    assert verify(SECRET, n.id, 2060, r2.body, r2.headers["webhook-signature"], now=2060)
    doc = json.loads(r1.body)
    assert doc["status"] == "firing" and len(doc["alerts"]) == 2
    assert {a["finding"]["code"] for a in doc["alerts"]} == {"MS1001", "MS4001"}
    assert all(a["fingerprint"] == a["finding"]["fingerprint"] for a in doc["alerts"])


def test_amwebhook_matches_alertmanager_v4_shape():
    rec = ReceiverConfig(name="am-hook", url="http://127.0.0.1:1/h", group_by=["namespace"], group_wait=0, group_interval=10)
    n = notification(rec, [route_finding("reviews"), route_finding("ratings")], resolve_after=1)
    doc = json.loads(amwebhook.render(n, rec, 2000.0, "http://127.0.0.1:8050").body)
    assert set(doc) == AM_V4_KEYS and doc["version"] == "4"
    assert doc["groupKey"] == '{}:{namespace="bookinfo"}' and doc["status"] == "firing"
    by_name = {a["labels"]["name"]: a for a in doc["alerts"]}
    assert all(set(a) == AM_V4_ALERT_KEYS for a in doc["alerts"])
    assert by_name["reviews"]["endsAt"] == GO_ZERO_TIME and by_name["reviews"]["status"] == "firing"
    assert by_name["ratings"]["status"] == "resolved" and by_name["ratings"]["endsAt"].startswith("1970-01-01T00:16:50")
    assert len(by_name["ratings"]["fingerprint"]) == 16 and by_name["ratings"]["fingerprint"] != by_name["reviews"]["fingerprint"]
    assert doc["commonLabels"]["namespace"] == "bookinfo" and "name" not in doc["commonLabels"]
    assert by_name["reviews"]["generatorURL"].startswith("http://127.0.0.1:8050/findings?fp=")


def test_alertmanager_v2_body_is_an_array_with_expiring_firing_alerts():
    rec = ReceiverConfig.for_format("am", "http://127.0.0.1:9093/", "alertmanager")
    n = notification(rec, [route_finding()])
    req = alertmanager.render(n, rec, 5000.0)
    assert req.url == "http://127.0.0.1:9093/api/v2/alerts"
    body = json.loads(req.body)
    assert isinstance(body, list) and body[0]["labels"]["alertname"] == "MS1001"
    assert body[0]["endsAt"] > body[0]["startsAt"]  # re-posted before it expires; expires if we die


def test_slack_escapes_untrusted_text_and_respects_limits():
    rec = ReceiverConfig(name="slack", url="http://127.0.0.1:1/s", group_wait=0)
    n = notification(rec, [route_finding(f"svc{i}") for i in range(80)])
    doc = json.loads(slack.render(n, rec, 0).body)
    assert len(doc["blocks"]) <= 50
    text = json.dumps(doc)
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in doc["blocks"])
    assert "more" in doc["blocks"][-3]["text"]["text"]
    assert doc["text"]
