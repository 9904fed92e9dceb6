"""Services compared across clusters."""
from diagnose.multicluster import inconsistent_services
from mesh.config import Snapshot, load_text


def svc(name: str, spec: str) -> str:
    return f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: shop}}\nspec: {spec}\n---\n"


def test_same_named_services_must_match_across_clusters():
    east = svc("same", "{ports: [{name: http, port: 80}]}") + svc("ports", "{ports: [{name: http, port: 80}]}") \
        + svc("type", "{type: ClusterIP}") + svc("headless", "{clusterIP: 10.0.0.1}") + svc("only-east", "{}")
    west = svc("same", "{ports: [{name: http, port: 80}]}") + svc("ports", "{ports: [{name: grpc, port: 80}]}") \
        + svc("type", "{type: LoadBalancer}") + svc("headless", "{clusterIP: None}")
    found = inconsistent_services({"east": Snapshot(load_text(east, "east.yaml").objects),
                                   "west": Snapshot(load_text(west, "west.yaml").objects)})
    by_name = {f.resource.name: f for f in found}
    assert sorted(by_name) == ["headless", "ports", "type"]
    assert by_name["type"].message == "differs between clusters east, west: type ClusterIP in east vs LoadBalancer in west"
    assert by_name["ports"].resource.source.startswith("east.yaml:")
    assert by_name["ports"].related[0].source.startswith("west.yaml:")
    assert by_name["headless"].equivalents == ["IST0170"]
