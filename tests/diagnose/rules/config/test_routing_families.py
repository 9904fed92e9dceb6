"""Gateway, DestinationRule, ServiceEntry, Sidecar, Service and cross-kind rules on small inline meshes."""
from mesh.config import MeshConfig
from tests.diagnose.rules.config.routing_helpers import findings, run

GW_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: ingress-1, namespace: istio-system, labels: {istio: ingressgateway}}
---
apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec: {selector: {istio: ingressgateway}, ports: [{name: http2, port: 80, targetPort: 8080}]}
---
"""


def gw(name: str, spec: str, ns: str = "edge") -> str:
    return f"apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: {ns}}}\n" \
           f"spec:\n{spec}\n---\n"


SERVER_80 = "  - {port: {number: 80, name: http, protocol: HTTP}, hosts: [%s]}"


def test_gateway_selector_and_ports():
    text = GW_POD + gw("ok", "  selector: {istio: ingressgateway}\n  servers:\n" + SERVER_80 % "a.com"
                       + "\n  - {port: {number: 8080, name: h, protocol: HTTP}, hosts: [a.com]}") \
        + gw("typo", "  selector: {istio: ingresgateway}\n  servers:\n" + SERVER_80 % "a.com") \
        + gw("badport", "  selector: {istio: ingressgateway}\n  servers:\n"
             "  - {port: {number: 9443, name: https, protocol: HTTPS}, hosts: [b.com]}")
    assert run("gateway.Selector", text) == [("MS1201", "typo", "spec/selector")]
    assert run("gateway.IngressPorts", text) == [("MS1203", "badport", "spec/servers[0]/port/number")]


def test_gateway_ports_exposed_by_a_gke_multi_cluster_service():
    """GKE's MultiClusterService derives the Service in front of the gateway pods from its template
    (GoogleCloudPlatform/gke-networking-recipes' mci-asm-https-e2e: its 443 server was MS1203)."""
    mcs = ("apiVersion: networking.gke.io/v1\nkind: MultiClusterService\nmetadata: {name: mcs, namespace: istio-system}\n"
           "spec:\n  template:\n    spec:\n      selector: {istio: ingressgateway}\n"
           "      ports: [{name: https, protocol: TCP, port: 443, targetPort: 443}]\n---\n")
    servers = "  selector: {istio: ingressgateway}\n  servers:\n" \
              "  - {port: {number: 443, name: https, protocol: HTTPS}, hosts: [b.com], tls: {mode: SIMPLE}}"
    assert run("gateway.IngressPorts", GW_POD + mcs + gw("g", servers)) == []
    other = mcs.replace("networking.gke.io", "example.com")  # another group's kind of that name derives nothing
    assert run("gateway.IngressPorts", GW_POD + other + gw("g", servers)) == [("MS1203", "g", "spec/servers[0]/port/number")]


def test_gateway_selector_matches_deployment_templates_too():
    dep = ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: gw, namespace: edge}\nspec:\n  template:\n"
           "    metadata: {labels: {app: my-gw}}\n---\n")
    assert run("gateway.Selector", dep + gw("g", "  selector: {app: my-gw}")) == []


def test_conflicting_gateways_need_same_workload_port_and_overlapping_host():
    text = GW_POD + gw("a", "  selector: {istio: ingressgateway}\n  servers:\n" + SERVER_80 % "'*.shop.com'") \
        + gw("b", "  selector: {istio: ingressgateway}\n  servers:\n" + SERVER_80 % "www.shop.com") \
        + gw("c", "  selector: {istio: ingressgateway}\n  servers:\n" + SERVER_80 % "other.com") \
        + gw("d", "  selector: {istio: egressgateway}\n  servers:\n" + SERVER_80 % "www.shop.com")
    got = run("gateway.Conflicts", text)
    assert got == [("MS1202", "a", "spec/servers[0]"), ("MS1202", "b", "spec/servers[0]")]


def dr(name: str, spec: str, ns: str = "shop") -> str:
    return f"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}, namespace: {ns}}}\n" \
           f"spec:\n{spec}\n---\n"


BACKEND = """\
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec: {selector: {app: reviews}, ports: [{name: http, port: 9080}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1, namespace: shop}
spec: {template: {metadata: {labels: {app: reviews, version: v1}}}}
---
"""


def test_destination_rule_hosts_and_subset_labels():
    text = BACKEND + dr("good", "  host: reviews\n  subsets: [{name: v1, labels: {version: v1}}]") \
        + dr("stale", "  host: reviews\n  subsets: [{name: v1, labels: {version: v1}}, {name: v9, labels: "
             "{version: v9}}]") \
        + dr("ghost", "  host: ghost") \
        + dr("meshwide", "  host: '*.local'\n  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}", ns="istio-system")
    assert run("destinationrule.SubsetSelectsPods", text) == [
        ("MS1101", "ghost", "spec/host"), ("MS1102", "stale", "spec/subsets[1]")]


def test_destination_rule_subset_names_and_duplicates():
    text = BACKEND + dr("a", "  host: reviews\n  subsets: [{name: v1, labels: {version: v1}}, "
                             "{name: v1, labels: {version: v2}}, {name: all}]") \
        + dr("b", "  host: reviews.shop.svc.cluster.local\n  subsets: [{name: v1, labels: {version: v1}}]") \
        + dr("c", "  host: reviews\n  subsets: [{name: v3, labels: {version: v3}}]")
    assert run("destinationrule.Subsets", text) == [("MS1103", "a", "spec/subsets[1]/name"),
                                                    ("MS1105", "a", "spec/subsets[2]")]
    assert run("destinationrule.Duplicates", text) == [("MS1104", "a", "spec/host"), ("MS1104", "b", "spec/host")]


def se(name: str, spec: str, ns: str = "shop") -> str:
    return f"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {name}, namespace: {ns}}}\n" \
           f"spec:\n{spec}\n---\n"


def test_service_entry_addresses_follow_dns_auto_allocation():
    text = se("tcp", "  hosts: [db.example.com]\n  ports: [{number: 5432, name: pg, protocol: tcp}]") \
        + se("noproto", "  hosts: [x.example.com]\n  ports: [{number: 1, name: x}]") \
        + se("http", "  hosts: [y.example.com]\n  ports: [{number: 80, name: http, protocol: HTTP}]") \
        + se("addr", "  hosts: [z.example.com]\n  addresses: [10.0.0.1]\n  ports: [{number: 1, name: t, "
             "protocol: TCP}]")
    assert run("serviceentry.Addresses", text) == [("MS1301", "noproto", "spec/ports[0]"),
                                                  ("MS1301", "tcp", "spec/ports[0]")]
    auto = MeshConfig(dns_capture=True, dns_auto_allocate=True)
    assert run("serviceentry.Addresses", text, auto) == []


def test_service_entry_validity_and_conflicts():
    text = se("bad", "  hosts: [a.example.com]\n  addresses: [10.0.0.0/8, nope]\n"
                     "  ports: [{number: 25, name: smtp, protocol: SMTP}]") \
        + se("https", "  hosts: [api.example.com]\n  ports: [{number: 8443, name: https, protocol: HTTPS}]") \
        + se("http", "  hosts: [api.example.com]\n  ports: [{number: 8443, name: http, protocol: HTTP}]") \
        + se("dup", "  hosts: [api.example.com]\n  ports: [{number: 8443, name: http, protocol: HTTP}]", ns="b") \
        + se("private", "  hosts: [api.example.com]\n  exportTo: ['.']\n  ports: [{number: 8443, name: t, "
             "protocol: TCP}]", ns="c")
    assert run("serviceentry.Validity", text) == [("MS1304", "bad", "spec/addresses[1]"),
                                                 ("MS1305", "bad", "spec/ports[0]/protocol")]
    got = run("serviceentry.Conflicts", text)
    assert ("MS1302", "https", "spec/ports[0]") in got and ("MS1302", "http", "spec/ports[0]") in got
    assert ("MS1302", "private", "spec/ports[0]") in got  # 'private' is seen together with the exported ones
    assert all(name != "bad" for _, name, _ in got)


def sc(name: str, spec: str, ns: str = "shop") -> str:
    return f"apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {{name: {name}, namespace: {ns}}}\n" \
           f"spec:\n{spec}\n---\n"


def test_sidecar_selectors_defaults_ambient_and_root():
    text = BACKEND + sc("d1", "  egress: [{hosts: ['./*']}]") + sc("d2", "  egress: [{hosts: ['./*']}]") \
        + sc("s1", "  workloadSelector: {labels: {app: reviews}}") \
        + sc("s2", "  workloadSelector: {labels: {version: v1}}") \
        + sc("none", "  workloadSelector: {labels: {app: nothing}}") \
        + ("apiVersion: v1\nkind: Namespace\nmetadata: {name: amb, labels: {istio.io/dataplane-mode: ambient}}\n"
           "---\n") + sc("amb", "  egress: [{hosts: ['./*']}]", ns="amb") \
        + sc("root", "  workloadSelector: {labels: {app: reviews}}", ns="istio-system")
    got = run("sidecar.Selectors", text)
    assert got == [("MS1401", "s1", "spec/workloadSelector"), ("MS1401", "s2", "spec/workloadSelector"),
                   ("MS1402", "d1", None), ("MS1402", "d2", None),
                   ("MS1403", "none", "spec/workloadSelector"), ("MS1403", "root", "spec/workloadSelector"),
                   ("MS1404", "amb", None)]
    assert run("sidecar.RootDefault", text) == [("MS1406", "root", "spec/workloadSelector")]


def test_sidecar_egress_hosts():
    text = BACKEND + sc("e", "  egress: [{hosts: ['./reviews', 'shop/nothere', '*/*', 'istio-system/*', "
                              "'./reviews.shop.svc.cluster.local']}]")
    assert run("sidecar.EgressHosts", text) == [("MS1405", "e", "spec/egress[0]/hosts[1]")]


def svc(name: str, spec: str, ns: str = "shop", labels: str = "{}") -> str:
    return f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}, labels: {labels}}}\n" \
           f"spec:\n{spec}\n---\n"


def test_port_names_and_app_protocol():
    text = svc("named", "  ports: [{port: 80, name: http-web}, {port: 81, name: grpc}]") \
        + svc("bad", "  ports: [{port: 80, name: web}, {port: 81}]") \
        + svc("app", "  ports: [{port: 80, name: web, appProtocol: http}, {port: 81, appProtocol: carrier-pigeon}]") \
        + svc("ext", "  type: ExternalName\n  externalName: x.com\n  ports: [{port: 443, name: tcp}]") \
        + svc("cp", "  ports: [{port: 80, name: foo}]", ns="istio-system", labels="{istio: pilot}")
    assert run("service.PortNames", text) == [
        ("MS1501", "bad", "spec/ports[0]"), ("MS1501", "bad", "spec/ports[1]"),
        ("MS1502", "ext", "spec/ports[0]"), ("MS1505", "app", "spec/ports[1]/appProtocol")]


def test_workload_behind_several_services():
    ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio-injection: enabled}}\n---\n"
    dep = ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: shop}\n"
           "spec: {template: {metadata: {labels: {app: api}}}}\n---\n")
    text = ns + dep + svc("api-tcp", "  selector: {app: api}\n  ports: [{port: 80, name: tcp, protocol: TCP}]") \
        + svc("api-udp", "  selector: {app: api}\n  ports: [{port: 80, name: udp, protocol: UDP}, "
                         "{port: 90, targetPort: 80, name: http}]")
    got = run("service.MultipleServices", text)
    assert got == [("MS1503", "api", None), ("MS1504", "api", None)]
    out_of_mesh = text.replace("istio-injection: enabled", "istio-injection: disabled")
    assert run("service.MultipleServices", out_of_mesh) == []


def test_field_types():
    text = ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v, namespace: shop}\n"
            "spec:\n  hosts: reviews\n  http:\n  - route:\n    - destination: {host: reviews, port: {number: '80'}}\n"
            "      weight: high\n")
    got = findings("schema.VirtualService", text)
    assert sorted((f.resource.path, f.resource.source) for f in got) == [
        ("spec/hosts", "t.yaml:5"), ("spec/http[0]/route[0]/destination/port/number", "t.yaml:8"),
        ("spec/http[0]/route[0]/weight", "t.yaml:9")]
    assert "spec.hosts must be a list of strings, got a string" in [f.message for f in got]


def test_export_to_deprecated_fields_and_conditions():
    text = ("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n"
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v, namespace: shop}\n"
            "spec:\n  exportTo: ['.', shop, ghost]\n  http: [{fault: {delay: {percent: 5}}}]\n---\n"
            "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: shop}\nstatus:\n  conditions:\n"
            "  - {type: istio.io/WaypointBound, status: 'False', message: waypoint missing}\n"
            "  - {type: other/Thing, status: 'False'}\n")
    assert run("common.ExportToNamespaces", text) == [("MS1017", "v", "spec/exportTo[2]")]
    assert run("common.DeprecatedFields", text) == [("MS1015", "v", "spec/http[0]/fault/delay/percent")]
    (cond,) = findings("common.NegativeConditions", text)
    assert cond.resource.name == "s" and "waypoint missing" in cond.message


def test_target_ports_must_exist_on_declaring_containers():
    dep = ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: shop}\nspec:\n  template:\n"
           "    metadata: {labels: {app: api}}\n    spec: {containers: [{name: a, ports: [{containerPort: 8080, "
           "name: web}]}]}\n---\n")
    quiet = ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: quiet, namespace: shop}\nspec:\n  template:\n"
             "    metadata: {labels: {app: quiet}}\n    spec: {containers: [{name: q}]}\n---\n")
    text = dep + quiet + svc("byname", "  selector: {app: api}\n  ports: [{port: 80, name: http, targetPort: web}]") \
        + svc("bynumber", "  selector: {app: api}\n  ports: [{port: 8080, name: http}]") \
        + svc("wrong", "  selector: {app: api}\n  ports: [{port: 80, name: http, targetPort: 9090}]") \
        + svc("undeclared", "  selector: {app: quiet}\n  ports: [{port: 80, name: http, targetPort: 9090}]")
    assert run("service.TargetPorts", text) == [("MS1507", "wrong", "spec/ports[0]")]



def test_target_ports_of_gateway_proxies_and_the_install_are_not_judged():
    """A gateway proxy listens where its Gateway's servers say, without declaring container ports (kubeflow's
    knative-local-gateway Service targets 8081 on cluster-local-gateway pods whose container lists only 15090),
    and Services in the root namespace are the install's own (Kiali skips them); an app's Service still is judged."""
    def dep(name: str, ns: str, port: int) -> str:
        return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n"
                f"  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec: {{containers: [{{name: istio-proxy, "
                f"image: proxyv2, ports: [{{containerPort: {port}}}]}}]}}\n---\n")
    local_gw = ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: local, namespace: apps}\n"
                "spec:\n  selector: {app: local-gw}\n  servers: [{port: {number: 8081, name: http, protocol: HTTP},"
                " hosts: ['*']}]\n---\n")
    text = (dep("local-gw", "edge", 15090) + dep("ingress", "istio-system", 15090) + dep("api", "apps", 8080) + local_gw
            + svc("local-gw", "  selector: {app: local-gw}\n  ports: [{port: 80, name: http, targetPort: 8081}]", "edge")
            + svc("extra", "  selector: {app: ingress}\n  ports: [{port: 31400, name: tcp, targetPort: 31400}]",
                  "istio-system")
            + svc("api", "  selector: {app: api}\n  ports: [{port: 80, name: http, targetPort: 9090}]", "apps"))
    assert run("service.TargetPorts", text) == [("MS1507", "api", "spec/ports[0]")]


def test_sidecar_outbound_policy_without_mode():
    text = sc("a", "  outboundTrafficPolicy: {}") + sc("b", "  outboundTrafficPolicy: {mode: REGISTRY_ONLY}")
    assert run("sidecar.OutboundPolicyMode", text) == [("MS1407", "a", "spec/outboundTrafficPolicy")]


def test_gateway_api_route_references():
    text = ("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: edge}\n"
            "spec: {gatewayClassName: istio}\n---\n") + svc("api", "  ports: [{port: 80, name: http}]") + \
        ("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: shop}\nspec:\n"
         "  parentRefs: [{name: gw, namespace: edge}, {name: nope}, {kind: Service, name: api}]\n  rules:\n"
         "  - backendRefs: [{name: api, port: 80}, {name: gone, port: 80}]\n")
    assert run("gatewayapi.References", text) == [("MS1601", "r", "spec/parentRefs[1]"),
                                                 ("MS1602", "r", "spec/rules[0]/backendRefs[1]")]


def test_gateway_api_routes_to_the_services_istiod_deploys_for_gateways():
    """istiod deploys a Service for each Gateway of its classes: `<name>-istio`, the waypoint's and east-west's
    under the Gateway's own name, or the name-override annotation; none for one whose address is a Hostname
    (unmanaged) or of another class. Istio's egress example (sail-operator's chart/samples) routes a mesh
    HTTPRoute to `httpbin-egress-gateway-istio`: it was MS1602."""
    def kgw(name: str, cls: str, extra: str = "") -> str:
        return (f"apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: shop"
                f"{extra}}}\nspec:\n  gatewayClassName: {cls}\n  listeners: [{{name: http, port: 80, protocol: HTTP}}]\n"
                "---\n")
    backends = ["egress-istio", "wp", "ew", "named", "egress", "wp-istio-waypoint", "other-foo", "unmanaged-istio"]
    text = (kgw("egress", "istio") + kgw("wp", "istio-waypoint") + kgw("ew", "istio-east-west")
            + kgw("custom", "istio", ", annotations: {gateway.istio.io/name-override: named}") + kgw("other", "foo")
            + kgw("unmanaged", "istio").replace("  listeners:", "  addresses: [{type: Hostname, value: lb.example}]\n"
                                                "  listeners:")
            + "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: shop}\n"
              "spec:\n  rules:\n  - backendRefs: [" + ", ".join(f"{{name: {b}, port: 80}}" for b in backends) + "]\n")
    assert run("gatewayapi.References", text) == [("MS1602", "r", f"spec/rules[0]/backendRefs[{i}]") for i in (4, 5, 6, 7)]
