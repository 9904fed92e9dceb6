"""What-if says "not known" for changes it does not model, instead of "nothing breaks".

A Sidecar egress restriction, a ServiceEntry change, a Gateway change, an EnvoyFilter: the replay does not
evaluate them, so the live edges each one governs come back at risk (never certain, so the CLI's exit code
is not decided by a guess), with the rps at stake and the reason; edges they do not govern stay out.
"""
from __future__ import annotations

import pandas as pd
import pytest

from collector import schema
from diagnose.whatif import predict
from diagnose.whatif.run import findings_of
from mesh.config import load_text
from tests.diagnose.whatif.test_replay import _live, _row


def _objs(text: str):
    got = load_text(text, "x.yaml")
    assert not got.problems, got.problems
    return got.objects


def _window():
    ext = _row("bookinfo", "reviews-v2", "ext-v0", "ratings", 0.7, reporter="source")  # an external host
    ext.update({schema.DESTINATION_SERVICE: "api.payments.example.com", schema.DESTINATION_WORKLOAD: "unknown",
                schema.DESTINATION_WORKLOAD_NAMESPACE: "unknown", schema.DESTINATION_APP: "unknown",
                schema.DESTINATION_VERSION: "unknown"})
    gw = _row("istio-system", "istio-ingressgateway", "productpage-v1", "productpage", 5.0, sa="istio-ingressgateway")
    return pd.DataFrame([
        gw,
        _row("bookinfo", "productpage-v1", "reviews-v1", "reviews", 3.0, sa="bookinfo-productpage"),
        _row("bookinfo", "productpage-v1", "details-v1", "details", 4.0, sa="bookinfo-productpage"),
        _row("bookinfo", "reviews-v2", "ratings-v1", "ratings", 2.0, sa="bookinfo-reviews"),
        ext,
    ])


def _risk(rep):
    return {(i.source, i.host.split(".")[0]): i for i in rep.impacts}


def test_a_sidecar_egress_restriction_puts_only_the_hosts_it_stops_importing_at_risk() -> None:
    prop = _objs("""
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: productpage-egress, namespace: bookinfo}
spec:
  workloadSelector: {labels: {app: productpage}}
  egress: [{hosts: ["./reviews.bookinfo.svc.cluster.local", "istio-system/*"]}]
""")
    rep = predict(_live(), prop, _window(), 3600, findings=False)
    got = _risk(rep)
    assert set(got) == {("bookinfo/productpage-v1", "details")}, got  # reviews is imported; ratings' caller not selected
    imp = got["bookinfo/productpage-v1", "details"]
    assert not imp.certain and imp.broken_rps == pytest.approx(4.0)
    assert "no longer imports details.bookinfo.svc.cluster.local" in imp.reason and imp.rule["kind"] == "Sidecar"
    assert rep.broken_rps == 0 and rep.at_risk_rps == pytest.approx(4.0)
    (f,) = findings_of(rep)
    assert f.code == "MS5007" and "at risk" in f.message


def test_a_namespace_wide_sidecar_selects_every_caller_of_its_namespace() -> None:
    prop = _objs("""
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: bookinfo}
spec:
  egress: [{hosts: ["./details.bookinfo.svc.cluster.local"]}]
""")
    got = _risk(predict(_live(), prop, _window(), 3600, findings=False))
    assert set(got) == {("bookinfo/productpage-v1", "reviews"), ("bookinfo/reviews-v2", "ratings"),
                        ("bookinfo/reviews-v2", "api")}, got


def test_a_service_entry_change_puts_the_traffic_to_its_hosts_at_risk() -> None:
    prop = _objs("""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: payments, namespace: bookinfo}
spec:
  hosts: [api.payments.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
  location: MESH_EXTERNAL
""")
    got = _risk(predict(_live(), prop, _window(), 3600, findings=False))
    assert set(got) == {("bookinfo/reviews-v2", "api")}, got
    assert got["bookinfo/reviews-v2", "api"].broken_rps == pytest.approx(0.7)
    assert "not judged: ServiceEntry bookinfo/payments is created" in got["bookinfo/reviews-v2", "api"].reason


def test_a_gateway_change_puts_the_traffic_through_its_workloads_at_risk_and_reapplying_changes_nothing() -> None:
    gw = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway, namespace: bookinfo}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [HOSTS]}]
"""
    live = [o for o in _live() if o.kind != "Gateway"] + _objs(gw.replace("HOSTS", '"*"'))
    got = _risk(predict(live, _objs(gw.replace("HOSTS", "shop.example.com")), _window(), 3600, findings=False))
    assert set(got) == {("istio-system/istio-ingressgateway", "productpage")}, got
    assert not got["istio-system/istio-ingressgateway", "productpage"].certain
    assert predict(live, _objs(gw.replace("HOSTS", '"*"')), _window(), 3600, findings=False).impacts == []
