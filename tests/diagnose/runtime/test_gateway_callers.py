"""A gateway caller is known by what it is (its labels, a Gateway's selector), never by the word in its name.

Strangers' requests through a gateway (scanners, typos) are outside traffic: their 404s are no service asked
for what it does not serve (MS3016), and no route serving them is information, not a broken route (MS3005).
A workload that happens to be called "gateway-api-client" is a mesh caller like any other; an ingress
Deployment named "edge" is a gateway.
"""
from __future__ import annotations

import pandas as pd
import pytest

from collector import schema as s
from diagnose.rules.runtime.gateways import gateway_callers, is_gateway
from mesh.config import Snapshot
from tests.diagnose.runtime.tables import fqdn, requests, table
from tests.diagnose.runtime.test_held_out_classes import demo_with, diagnose


def deployment(name: str, ns: str, labels: dict[str, str]) -> str:
    lab = ", ".join(f"{k}: {v}" for k, v in labels.items())
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{{lab}}}}}
  template:
    metadata: {{labels: {{{lab}}}}}
    spec:
      containers: [{{name: app, image: example/app}}]
---"""


CLIENT = deployment("gateway-api-client", "bookinfo", {"app": "gateway-api-client"})
GATEWAYS = {  # three ways a workload is a gateway, none of them its name
    "istio label": deployment("edge", "istio-system", {"app": "edge", "istio": "ingressgateway"}),
    "gateway api label": deployment("edge", "istio-system", {"app": "edge", "gateway.networking.k8s.io/gateway-name": "web"}),
    "gateway selector": deployment("edge", "istio-system", {"app": "front-door"}) + """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: front, namespace: bookinfo}
spec:
  selector: {app: front-door}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]
---""",
}


def answered(code: int, df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(**{s.RESPONSE_CODE: code, s.RESPONSE_CODE_DETAILS: "via_upstream"})


@pytest.mark.parametrize("how", list(GATEWAYS))
def test_strangers_paths_through_a_gateway_named_otherwise_are_not_a_service_asked_wrongly(how):
    snap = demo_with(GATEWAYS[how] + CLIENT)
    df = table(requests("edge", fqdn("productpage"), "ok", 60, source_ns="istio-system"),
               answered(404, requests("edge", fqdn("productpage"), "ok", 60, source_ns="istio-system")))
    assert "MS3016" not in {f.code for f in diagnose(df, snap, with_config=False)}


@pytest.mark.parametrize("how", list(GATEWAYS))
def test_a_mesh_workload_called_gateway_something_asking_for_unserved_paths_is_found(how):
    snap = demo_with(GATEWAYS[how] + CLIENT)
    df = table(requests("gateway-api-client", fqdn("details"), "ok", 20),
               answered(404, requests("gateway-api-client", fqdn("details"), "ok", 60)))
    f = next(x for x in diagnose(df, snap, with_config=False) if x.code == "MS3016")
    assert {e["source_workload"] for e in f.evidence["edges"]} == {"gateway-api-client"}


@pytest.mark.parametrize("how", list(GATEWAYS))
def test_no_route_for_a_gateway_named_otherwise_is_outside_traffic_and_for_a_mesh_client_an_error(how):
    snap = demo_with(GATEWAYS[how] + CLIENT)
    outside = diagnose(table(requests("edge", fqdn("productpage"), "ok", 30, source_ns="istio-system"),
                             requests("edge", fqdn("productpage"), "no_route", 30, source_ns="istio-system")),
                       snap, with_config=False)
    nr = next(f for f in outside if f.code == "MS3005")
    assert nr.severity == "info" and nr.evidence.get("outside_traffic")
    inside = diagnose(table(requests("gateway-api-client", fqdn("details"), "ok", 30),
                            requests("gateway-api-client", fqdn("details"), "no_route", 30)), snap, with_config=False)
    nr = next(f for f in inside if f.code == "MS3005")
    assert nr.severity == "error" and not nr.evidence.get("outside_traffic")


def test_the_demo_ingress_is_a_gateway_by_its_labels_and_its_pods_by_their_deployment():
    snap = demo_with(CLIENT)
    assert gateway_callers(snap, [("istio-ingressgateway", "istio-system"), ("istio-ingressgateway-7d9f-x2", None),
                                  ("gateway-api-client", "bookinfo"), ("productpage-v1", "bookinfo"),
                                  ("istio-ingressgateway", "bookinfo")]) == {
        ("istio-ingressgateway", "istio-system"), ("istio-ingressgateway-7d9f-x2", None)}


def test_without_workloads_in_the_config_the_install_names_stand_in():
    """Prometheus-only, with no pods read: Istio's install names are all there is to go by (exact, not a word)."""
    names = pd.Series(["istio-ingressgateway", "istio-ingressgateway-5c4b", "gateway-api-client", "my-gateway"])
    assert is_gateway(Snapshot([]), names, pd.Series(["istio-system", "unknown", "bookinfo", "bookinfo"])).tolist() == [
        True, True, False, False]
    assert is_gateway(None, names).tolist() == [True, True, False, False]
