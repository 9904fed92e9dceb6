"""One notification per incident: the root cause alerts, its symptoms ride along, an update when they change."""
from diagnose.alerts.config import ReceiverConfig
from diagnose.alerts.grouping import Grouper, incident_alerts
from tests.diagnose.test_incidents import findings
from tests.diagnose.runtime.tables import T0, fqdn, requests, table


def mtls_incident(with_upstream: bool):
    parts = [requests("productpage-v1", fqdn("reviews"), "mtls_plaintext", 30),
             requests("reviews-v1", fqdn("reviews"), "listener_tls", 30, reporter="destination")]
    if with_upstream:
        parts += [requests("istio-ingressgateway", fqdn("productpage"), "ok", 60, start=T0, end=T0 + 20, duration_ms=10),
                  requests("istio-ingressgateway", fqdn("productpage"), "5xx", 30, start=T0 + 20, end=T0 + 30,
                           duration_ms=1500)]
    return findings(table(*parts), "mtls")


def test_an_incident_is_one_alert_and_one_notification_updated_when_symptoms_join():
    rec = ReceiverConfig(name="hook", url="http://127.0.0.1:1/h", group_by=["..."], group_wait=0, group_interval=0)
    g = Grouper([rec])
    first = mtls_incident(with_upstream=False)
    assert len(first) >= 2  # MS3001 + the MS2010 config finding that predicted it
    alerts = incident_alerts(first, T0)
    assert [a.labels["code"] for a in alerts] == ["MS3001"]
    assert "MS2010" in alerts[0].annotations["symptoms"] and alerts[0].finding["incident"]["id"]
    g.observe(alerts, T0)
    sent = g.flush(T0)
    assert len(sent) == 1 and len(sent[0].alerts) == 1
    # nothing changed: nothing new to send
    g.observe(incident_alerts(mtls_incident(with_upstream=False), T0 + 1), T0 + 1)
    assert g.flush(T0 + 1) == []
    # the incident grows (productpage fails upstream of it): one update about the same alert, not a new alert
    grown = incident_alerts(mtls_incident(with_upstream=True), T0 + 2)
    assert [a.labels["code"] for a in grown] == ["MS3001"]
    g.observe(grown, T0 + 2)
    update = g.flush(T0 + 2)
    assert len(update) == 1 and [a.fingerprint for a in update[0].alerts] == [alerts[0].fingerprint]
    assert "productpage" in update[0].alerts[0].annotations["symptoms"]
