"""The control plane's config set changes like `kubectl apply/delete`, keyed as the API server keys objects."""
from __future__ import annotations

from mesh.config import load_text
from mesh.controlplane.store import with_applied, with_deleted

ISTIO_GW = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: web}
spec: {selector: {istio: ingressgateway}, servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]}
"""
K8S_GW = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: web}
spec: {gatewayClassName: istio, listeners: [{name: http, port: 80, protocol: HTTP}]}
"""


def objs(text: str):
    res = load_text(text, "t.yaml", exclude_namespaces=frozenset())
    assert not res.problems, res.problems
    return res.objects


def test_istio_gateway_and_gateway_api_gateway_of_one_name_are_two_objects():
    both = with_applied(objs(ISTIO_GW), objs(K8S_GW))
    assert sorted(o.api_version for o in both) == ["gateway.networking.k8s.io/v1", "networking.istio.io/v1"]
    # deleting one leaves the other
    remaining, missing = with_deleted(both, objs(K8S_GW))
    assert [o.api_version for o in remaining] == ["networking.istio.io/v1"] and missing == []


def test_apply_replaces_in_place_and_delete_names_what_is_missing():
    changed = ISTIO_GW.replace("number: 80", "number: 8080")
    out = with_applied(objs(ISTIO_GW), objs(changed))
    assert len(out) == 1 and out[0].raw["spec"]["servers"][0]["port"]["number"] == 8080
    remaining, missing = with_deleted([], objs(ISTIO_GW))
    assert remaining == [] and missing == [("Gateway", "web", "edge")]
