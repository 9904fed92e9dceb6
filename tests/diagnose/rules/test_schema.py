"""The schema layer: every Istio kind checked field by field against Istio's API definition.

Held to Istio's own data (its validation test files, its samples), and, for the
classes of problem that apply to many fields (enums, durations, unknown fields,
wrong types), to every such field of every kind, generated from the schema
itself, each found at the right line and path.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagnose import analyze
from mesh.config import Snapshot, load_paths, load_text
from mesh.config.kinds import ANALYZED_KINDS, ISTIO_GROUPS
from mesh.config.schema import DATA, UNSUPPORTED_RULES, kinds, validate, validate_object
from mesh.config.schema.compiler import compile_schema
from mesh.config.yamlnodes import parse_documents

HERE = Path(__file__).parent / "data"
UPSTREAM = HERE / "istio-validation"
SAMPLES = HERE / "istio-samples"
SCHEMAS = json.loads(DATA.read_text())
SCHEMA_CODES = {"MS0007", "MS0014", "MS0015", "MS0016", "MS0017", "MS0018", "MS0019", "MS0020", "MS0021", "MS0022",
                "MS0023"}


def _upstream_docs(valid: bool) -> Iterator[tuple[str, int, dict[str, Any]]]:
    for f in sorted(UPSTREAM.glob("*-valid.yaml" if valid else "*-invalid.yaml")):
        docs, errors = parse_documents(f.read_text())
        # `[1.2.3.4, 001:db8::]` (a plain scalar with ':' inside a flow list) is YAML 1.2, which Go's parser
        # reads; libyaml (YAML 1.1) refuses that one document. Every other document must load.
        assert [(f.name, e.line) for e in errors] in ([], [("serviceentry-valid.yaml", 11)])
        for d in docs:
            if isinstance(d.data, dict):
                yield f.name, d.line, d.data


def _api_version(kind: str) -> str:
    d = SCHEMAS[kind]
    return f"{d['group']}/{d['versions'][0]}"


# -- Istio's own data ---------------------------------------------------------------------------


def test_every_istio_kind_meshscope_loads_has_a_schema():
    istio_kinds = {k for k, g in ANALYZED_KINDS.items() if g in ISTIO_GROUPS}
    assert istio_kinds <= set(kinds()), istio_kinds - set(kinds())
    for kind, group in kinds().items():
        assert ANALYZED_KINDS[kind] == group


def test_every_crd_rule_compiles():
    for kind in kinds():
        compile_schema(SCHEMAS[kind]["spec"])
    assert UNSUPPORTED_RULES == {}


def test_istios_valid_validation_data_is_accepted():
    seen = 0
    for name, line, data in _upstream_docs(valid=True):
        seen += 1
        assert validate(data["kind"], data, data["apiVersion"].split("/")[0]) == [], f"{name}:{line}"
    assert seen > 30


#: How the API server words each class of schema error (what upstream's `_err` quotes) -> our problem classes.
UPSTREAM_WORDING = {"Unsupported value": {"enum"}, "Required value": {"required"}, "Duplicate value": {"duplicate"},
                    "must be of type": {"type"}, "should be at least": {"range"}, "should match": {"format"},
                    "Invalid value": {"range", "format", "type"}, "type conversion error": {"rule", "type"}}


def _agrees(expected: str, issues) -> bool:
    """Upstream's `_err` names a field path, the API server's wording of a class, or the CRD rule's message."""
    field = expected.split(":")[0].split(" in body")[0].strip()
    if any(i.field == field or i.field.endswith("." + field) for i in issues):
        return True
    for wording, classes in UPSTREAM_WORDING.items():
        if wording in expected and any(i.problem in classes for i in issues):
            return True
    return any(expected.split(": ")[-1].strip().rstrip("n") in i.message for i in issues)


def test_istios_invalid_validation_data_is_refused_where_upstream_says():
    seen = 0
    for name, line, data in _upstream_docs(valid=False):
        expected = str(data.pop("_err", ""))
        issues = validate(data["kind"], data, data["apiVersion"].split("/")[0])
        seen += 1
        assert issues, f"{name}:{line} accepted; upstream refuses it with {expected!r}"
        assert _agrees(expected, issues), f"{name}:{line}: expected {expected!r}, got {[i.message for i in issues]}"
    assert seen > 60


def test_istio_samples_have_no_schema_findings():
    loaded = load_paths([SAMPLES])
    istio = [o for o in loaded.objects if o.kind in kinds()]
    assert len(istio) > 60
    bad = [(o.ref, str(o.source), [i.message for i in validate_object(o)]) for o in istio if validate_object(o)]
    assert bad == []


# -- every field of a class, generated from the schema ------------------------------------------


def _leaves(schema: dict[str, Any], path: tuple, want) -> Iterator[tuple[tuple, dict[str, Any]]]:
    if want(schema):
        yield path, schema
    for key, sub in (schema.get("properties") or {}).items():
        yield from _leaves(sub, (*path, ("key", key)), want)
    if isinstance(schema.get("items"), dict):
        yield from _leaves(schema["items"], (*path, ("item",)), want)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _leaves(schema["additionalProperties"], (*path, ("key", "entry1")), want)


def _document(kind: str, path: tuple, value: Any) -> tuple[str, str]:
    """(YAML text of an object whose spec sets `path` to `value`, the loader's YAML path of that field)."""
    doc, yaml_path = _data(kind, path, value)
    return yaml.safe_dump(doc, sort_keys=False), yaml_path


def _data(kind: str, path: tuple, value: Any) -> tuple[dict[str, Any], str]:
    spec: Any = value
    for step in reversed(path):
        spec = {step[1]: spec} if step[0] == "key" else [spec]
    yaml_path = "spec"
    for step in path:
        yaml_path += f"/{step[1]}" if step[0] == "key" else "[0]"
    doc = {"apiVersion": _api_version(kind), "kind": kind, "metadata": {"name": "x", "namespace": "shop"},
           "spec": spec}
    return doc, yaml_path


def _found(kind: str, path: tuple, value: Any, code: str) -> tuple[Any, str, str]:
    text, yaml_path = _document(kind, path, value)
    findings = [f for f in analyze(Snapshot(load_text(text, "gen.yaml").objects)) if f.code in SCHEMA_CODES]
    hit = [f for f in findings if f.code == code and f.resource.path == yaml_path]
    assert hit, f"{kind} {yaml_path}={value!r}: wanted {code}, got {[(f.code, f.message) for f in findings]}"
    line = int(hit[0].resource.source.rsplit(":", 1)[1])
    last = path[-1][1] if path[-1][0] == "key" else None
    if last is not None:  # the finding points at the line that writes the field
        assert text.splitlines()[line - 1].lstrip(" -").startswith(f"{last}:"), (text, line)
    return hit[0], text, yaml_path


def _cases(want) -> list[tuple[str, tuple]]:
    return [(kind, path) for kind in sorted(kinds()) for path, _ in _leaves(SCHEMAS[kind]["spec"], (), want)]


ENUM_FIELDS = _cases(lambda s: "enum" in s)
DURATION_FIELDS = _cases(lambda s: any("duration(self)" in r.get("rule", "")
                                       for r in s.get("x-kubernetes-validations") or []))


def test_the_generated_cases_cover_every_kind_with_such_fields():
    assert len(ENUM_FIELDS) > 40 and len(DURATION_FIELDS) > 60
    assert {k for k, _ in ENUM_FIELDS} >= {"VirtualService", "DestinationRule", "Gateway", "ServiceEntry", "Sidecar",
                                           "PeerAuthentication", "AuthorizationPolicy", "Telemetry", "WasmPlugin",
                                           "EnvoyFilter"}


def test_a_wrong_enum_value_is_reported_at_its_field_in_every_kind():
    for kind, path in ENUM_FIELDS:
        finding, _, _ = _found(kind, path, "NOT_A_VALUE", "MS0016")
        assert "must be one of" in finding.message and "IST0106" in finding.equivalents


def test_a_lowercase_enum_value_gets_a_suggestion():
    finding, _, _ = _found("DestinationRule", (("key", "trafficPolicy"), ("key", "tls"), ("key", "mode")), "simple",
                           "MS0016")
    assert "did you mean SIMPLE?" in finding.message


def test_a_duration_without_unit_is_reported_at_its_field_in_every_kind():
    for kind, path in DURATION_FIELDS:
        finding, _, _ = _found(kind, path, "5", "MS0020")
        assert "missing unit" in finding.message, finding.message


def test_unknown_fields_are_reported_with_a_suggestion_in_every_kind():
    for kind in sorted(kinds()):
        props = sorted(SCHEMAS[kind]["spec"].get("properties") or {})
        field = props[0]
        typo = field[:-1] + ("X" if field[-1] != "X" else "Y")
        finding, _, _ = _found(kind, (("key", typo),), "x", "MS0014")
        assert f"did you mean {field}?" in finding.message, finding.message


def test_wrong_types_never_raise_and_are_reported_where_the_schema_has_a_type():
    """Every field of every kind given every wrong kind of value: findings, never an exception."""
    for kind in sorted(kinds()):
        for path, schema in _leaves(SCHEMAS[kind]["spec"], (), lambda s: "type" in s):
            if not path:
                continue
            for value in ([1, 2], {"a": 1}, True, 3, "text"):
                doc, yaml_path = _data(kind, path, value)
                issues = validate(kind, doc)
                expected_type = schema["type"]
                fits = {"array": isinstance(value, list), "object": isinstance(value, dict),
                        "boolean": isinstance(value, bool), "string": isinstance(value, str),
                        "integer": isinstance(value, int) and not isinstance(value, bool),
                        "number": isinstance(value, int) and not isinstance(value, bool)}[expected_type]
                if schema.get("x-kubernetes-int-or-string"):
                    fits = isinstance(value, (int, str)) and not isinstance(value, bool)
                if not fits:
                    assert any(i.path == yaml_path and i.problem == "type" for i in issues), (kind, yaml_path, value)


# -- one object, several problems: every one, with its line -------------------------------------

DR = """apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: many}
      http: {idleTimeout: soon}
    loadBalancer: {simple: ROUNDROBIN}
  subsets:
  - name: v1
    lables: {version: v1}
  - name: v1
"""

VS = """apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - route:
    - weight: 0
    - destination: {host: reviews, subset: v2}
      weight: -5
  - timeout: 5s
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: nothing, namespace: bookinfo}
spec:
  hosts: [ratings]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: bookinfo}
spec:
  selector: {istio: ingressgateway}
  servers:
  - hosts: ["*"]
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["bad_host.example.com"]
"""


def _by_line(text: str) -> list[tuple[str, int, str]]:
    loaded = load_text(text, "f.yaml")
    out = []
    for f in analyze(Snapshot(loaded.objects)):
        if f.code in SCHEMA_CODES:
            out.append((f.code, int(f.resource.source.rsplit(":", 1)[1]), f.resource.path))
    return sorted(out)


def test_every_bad_field_of_a_destination_rule_is_reported_with_its_line():
    assert _by_line(DR) == [
        ("MS0007", 8, "spec/trafficPolicy/connectionPool/tcp/maxConnections"),
        ("MS0014", 13, "spec/subsets[0]/lables"),
        ("MS0016", 10, "spec/trafficPolicy/loadBalancer/simple"),
        ("MS0020", 9, "spec/trafficPolicy/connectionPool/http/idleTimeout"),
    ]


def test_webhook_checks_of_virtual_services_and_gateways():
    got = _by_line(VS)
    assert ("MS0015", 8, "spec/http[0]/route[0]/destination") in got  # a route without destination
    assert ("MS0023", 10, "spec/http[0]/route[1]/weight") in got  # weight below 0
    assert ("MS0023", 11, "spec/http[1]") in got  # neither route, redirect nor directResponse
    assert ("MS0023", 16, "spec") in got  # no http, tcp or tls
    assert ("MS0015", 25, "spec/servers[0]/port") in got  # a server without port
    assert ("MS0023", 26, "spec/servers[1]") in got  # HTTPS without tls settings
    assert ("MS0023", 27, "spec/servers[1]/hosts[0]") in got  # not a DNS name
    messages = [f.message for f in analyze(Snapshot(load_text(VS, "f.yaml").objects)) if f.code in SCHEMA_CODES]
    assert any("http, tcp or tls must be provided" in m for m in messages)


def test_gateway_api_objects_of_the_same_kind_name_are_not_checked_as_istio():
    text = ("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: x}\n"
            "spec: {gatewayClassName: istio, listeners: [{name: http, port: 80, protocol: HTTP}]}\n")
    assert _by_line(text) == []


def test_apply_refuses_with_every_bad_field_and_its_line(tmp_path: Path, capsys):
    from meshscope.commands.apply import load_change

    (tmp_path / "dr.yaml").write_text(DR)
    assert load_change([tmp_path / "dr.yaml"], "apply") is None
    out = capsys.readouterr().out
    lines = [ln.strip() for ln in out.splitlines()[1:]]
    assert [ln.split(" ", 1)[0] for ln in lines] == [f"{tmp_path / 'dr.yaml'}:{n}" for n in (8, 9, 10, 13)]
    assert all("(DestinationRule reviews)" in ln for ln in lines)
    for needle in ("maxConnections", "idleTimeout", "ROUNDROBIN", "lables"):
        assert needle in out


def test_the_control_api_refuses_with_every_bad_field():
    from mesh.control_api import ControlServer

    class NoMesh:
        def apply(self, objects):  # pragma: no cover - must not be reached
            raise AssertionError("an invalid object reached the mesh")

    server = ControlServer(NoMesh(), port=0, token="t")
    try:
        code, payload = server.post("/v1/apply", DR, "dr.yaml")
    finally:
        server.stop()
    assert code == 400
    assert [p.split(" ", 1)[0] for p in payload["problems"]] == [f"dr.yaml:{n}" for n in (8, 9, 10, 13)]


@pytest.mark.parametrize("text, seconds", [("1h2m3.5s", 3723.5), ("250ms", 0.25), ("0", 0.0), ("1.5h", 5400.0),
                                           ("-2s", -2.0), ("10us", 1e-5)])
def test_durations_parse_as_go_does(text: str, seconds: float):
    from mesh.config.schema.durations import parse_duration
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5", "5 s", "5sec", "", "s", "1.2.3s", "5S", "999999999999s"])
def test_what_go_refuses_is_not_a_duration(text: str):
    from mesh.config.schema.durations import DurationError, parse_duration
    with pytest.raises(DurationError):
        parse_duration(text)


def test_a_problem_a_dedicated_rule_reports_is_one_finding():
    text = ("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p, namespace: shop}\n"
            "spec:\n  mtls: {mode: STRICT}\n  portLevelMtls:\n    8080: {mode: DISABLE}\n")
    codes = [f.code for f in analyze(Snapshot(load_text(text, "p.yaml").objects)) if f.severity == "error"]
    assert codes == ["MS2012"]
    (obj,) = load_text(text, "p.yaml").objects
    assert [i.rule_message for i in validate_object(obj)] == ["portLevelMtls requires selector"]  # apply refuses


SECURITY = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-nothing, namespace: shop}
spec:
  action: DENY
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: custom, namespace: shop}
spec:
  action: CUSTOM
  rules:
  - from:
    - source: {}
    to:
    - {}
    when:
    - key: request.headers[x-user]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: shop}
spec:
  jwtRules:
  - audiences: [shop]
"""


def test_webhook_checks_of_security_policies():
    got = _by_line(SECURITY)
    assert ("MS0023", 4, "spec") in got  # DENY without rules never triggers
    assert ("MS0023", 10, "spec/provider") in got  # CUSTOM without provider.name
    assert ("MS0023", 14, "spec/rules[0]/from[0]/source") in got  # empty source
    assert ("MS0023", 16, "spec/rules[0]/to[0]") in got  # to without operation
    assert ("MS0023", 18, "spec/rules[0]/when[0]") in got  # a condition without values
    assert ("MS0023", 25, "spec/jwtRules[0]") in got  # neither issuer nor jwksUri


# -- arbitrary input never breaks the validator ---------------------------------------------------

SCHEMA_PROBLEMS = {"type", "required", "unknown", "enum", "range", "format", "exclusive", "duration", "duplicate",
                   "rule", "semantic"}
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False),
                     st.text(max_size=12), st.sampled_from(["5s", "*", "unix:///x", "http://a", "0", "", "STRICT"]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                       max_leaves=12)


@st.composite
def _mutated(draw):
    """An object of some kind whose spec has a schema-known path set to an arbitrary value."""
    kind = draw(st.sampled_from(sorted(kinds())))
    paths = [p for p, _ in _leaves(SCHEMAS[kind]["spec"], (), lambda s: True) if p]
    path = draw(st.sampled_from(paths))
    doc, _ = _data(kind, path, draw(_VALUES))
    return kind, doc


_FIELD_NAMES = sorted({step[1] for kind in SCHEMAS for path, _ in _leaves(SCHEMAS[kind]["spec"], (), lambda s: True)
                       for step in path if step[0] == "key"})
_SPECS = st.dictionaries(st.sampled_from(_FIELD_NAMES), st.recursive(
    _SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                      st.dictionaries(st.sampled_from(_FIELD_NAMES), inner, max_size=4)),
    max_leaves=20), max_size=6)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(SCHEMAS)), _SPECS)
def test_arbitrary_specs_made_of_real_field_names_never_raise(kind, spec):
    """Field names the API uses, nested anyhow: what the webhook checks read together (ports and endpoints...)."""
    for issue in validate(kind, {"apiVersion": _api_version(kind), "kind": kind, "metadata": {"name": "x"},
                                 "spec": spec}):
        assert issue.problem in SCHEMA_PROBLEMS


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_arbitrary_values_anywhere_give_issues_never_exceptions(case):
    kind, doc = case
    for issue in validate(kind, doc):
        assert issue.path.startswith("spec") and issue.message and issue.problem in SCHEMA_PROBLEMS



def test_a_spec_that_is_not_a_mapping_is_reported_once():
    text = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v, namespace: shop}\nspec: [1]\n"
    loaded = load_text(text, "v.yaml")
    findings = analyze(Snapshot(loaded.objects), problems=loaded.problems)
    assert [(f.code, f.resource.path) for f in findings if f.code in SCHEMA_CODES] == [("MS0007", "spec")]


ENVOY_FILTER = """apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: ef, namespace: shop}
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    match:
      listener:
        filterChain:
          filter:
            name: envoy.filters.network.tcp_proxy
            subFilter: {name: envoy.filters.http.router}
    patch:
      operation: INSERT_BEFORE
  - applyTo: CLUSTER
    match:
      listener: {portNumber: 80}
      proxy: {proxyVersion: '^1\\.(2'}
    patch: {operation: REMOVE}
  - applyTo: NETWORK_FILTER
"""


def test_webhook_checks_of_envoy_filters():
    got = _by_line(ENVOY_FILTER)
    assert ("MS0023", 12, "spec/configPatches[0]/match/listener/filterChain/filter/subFilter") in got  # not the HCM
    assert ("MS0023", 13, "spec/configPatches[0]/patch") in got  # INSERT_BEFORE without a value
    assert ("MS0023", 16, "spec/configPatches[1]/match") in got  # CLUSTER with a listener match
    assert ("MS0023", 18, "spec/configPatches[1]/match/proxy/proxyVersion") in got  # not a regex
    assert ("MS0023", 20, "spec/configPatches[2]") in got  # no patch at all


SERVICE_ENTRIES = """apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: apis, namespace: shop}
spec:
  hosts: [a.example.com, b.example.com]
  ports:
  - {number: 5432, name: pg, protocol: TCP}
  resolution: DNS
  endpoints:
  - address: db_1.example.com
    ports: {postgres: 5432}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dyn, namespace: shop}
spec:
  hosts: [api.example.com]
  addresses: [10.0.0.1]
  ports:
  - {number: 443, name: tls, protocol: TLS}
  resolution: DYNAMIC_DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: nospec, namespace: shop}
"""


def test_webhook_checks_of_service_entries():
    got = _by_line(SERVICE_ENTRIES)
    assert ("MS0023", 7, "spec/ports[0]") in got  # two hosts on a TCP port
    assert ("MS0023", 10, "spec/endpoints[0]/address") in got  # not a DNS name
    assert ("MS0023", 11, "spec/endpoints[0]/ports/postgres") in got  # no such service port
    assert ("MS0023", 17, "spec/hosts[0]") in got  # DYNAMIC_DNS hosts are wildcards
    assert ("MS0023", 18, "spec/addresses") in got
    assert [g for g in got if g[1] >= 23] == [("MS0015", 23, "spec")]  # spec missing: one finding, not one per field


GATEWAYS = """apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: shop}
spec:
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
    tls: {httpsRedirect: true}
  - port: {number: 8080, name: http-alt, protocol: HTTP, targetPort: 8080}
    hosts: ["*"]
    tls: {mode: SIMPLE, credentialName: cert}
  - port: {number: 70000, name: tcp, protocol: TCP}
    bind: localhost
    hosts: ["*"]
"""


def test_webhook_checks_of_gateway_servers():
    got = _by_line(GATEWAYS)
    assert not [g for g in got if g[1] <= 8]  # an HTTP server that only redirects to HTTPS is fine
    assert ("MS0023", 9, "spec/servers[1]/port/targetPort") in got
    assert ("MS0023", 11, "spec/servers[1]/tls") in got  # TLS settings on a plain-text HTTP port
    assert ("MS0023", 12, "spec/servers[2]/port/number") in got  # above 65535
    assert ("MS0023", 13, "spec/servers[2]/bind") in got  # not an IP


ROUTES = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r, namespace: shop}
spec:
  hosts: [r]
  http:
  - match:
    - uri: {regex: '/api/(v1'}
      headers:
        x-user: {prefix: ''}
    fault: {}
    rewrite: {}
    mirror: {host: r, subset: V_1}
    route:
    - destination: {host: 'r..shop', subset: v1}
"""


def test_webhook_checks_of_http_routes():
    got = _by_line(ROUTES)
    assert ("MS0023", 8, "spec/http[0]/match[0]/uri/regex") in got  # not a regex
    assert ("MS0023", 10, "spec/http[0]/match[0]/headers/x-user/prefix") in got  # empty prefix
    assert ("MS0023", 11, "spec/http[0]/fault") in got  # neither abort nor delay
    assert ("MS0023", 12, "spec/http[0]/rewrite") in got  # rewrites nothing
    assert ("MS0023", 13, "spec/http[0]/mirror/subset") in got  # not a DNS label
    assert ("MS0023", 15, "spec/http[0]/route[0]/destination/host") in got  # empty label


SIDECAR = """apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: s, namespace: shop}
spec:
  workloadSelector: {labels: {app: shop}}
  ingress:
  - port: {number: 9080, protocol: HTTP, name: http, targetPort: 9081}
    defaultEndpoint: 127.0.0.1:9080
  egress:
  - port: {number: 9080, protocol: HTTP, name: http}
    hosts: [./*]
  - hosts: [istio-system/*]
"""


def test_webhook_checks_of_sidecar_listeners():
    got = _by_line(SIDECAR)
    assert ("MS0023", 7, "spec/ingress[0]/port/targetPort") in got
    assert ("MS0023", 10, "spec/egress[0]/port/number") in got  # 9080 is also an ingress port
    assert not [g for g in got if g[1] >= 11]  # a last, port-less egress listener is fine


WORKLOADS = """apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm1, namespace: shop}
spec:
  address: vm_1.example.com
  ports: {http_web: 8080}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm2, namespace: shop}
spec:
  address: 10.0.0.7
  ports: {http-web: 8080}
"""


def test_webhook_checks_of_workload_entries():
    got = _by_line(WORKLOADS)
    assert ("MS0023", 5, "spec/address") in got and ("MS0023", 6, "spec/ports/http_web") in got
    assert not [g for g in got if g[1] > 6]


def test_served_versions_are_per_kind_as_istios_crds_say():
    text = ("apiVersion: networking.istio.io/v1\nkind: EnvoyFilter\nmetadata: {name: e, namespace: shop}\n"
            "spec: {configPatches: []}\n---\n"
            "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: f, namespace: shop}\n"
            "spec: {configPatches: []}\n---\n"
            "apiVersion: networking.istio.io/v1\nkind: ProxyConfig\nmetadata: {name: p, namespace: shop}\n"
            "spec: {concurrency: 2}\n")
    got = [(f.resource.name, f.message) for f in analyze(Snapshot(load_text(text, "v.yaml").objects))
           if f.code == "MS0010"]
    assert [n for n, _ in got] == ["e", "p"]
    assert "(networking.istio.io/v1alpha3)" in got[0][1] and "(networking.istio.io/v1beta1)" in got[1][1]


@pytest.mark.parametrize("rule, value, holds", [
    ("has(self.a) ? self.a.size() > 0 : true", {"a": {}}, False),
    ("has(self.a) ? self.a.size() > 0 : true", {}, True),
    ("(has(self.a) ? 1 : 0) + (has(self.b) ? 1 : 0) <= 1", {"a": 1, "b": 2}, False),
    ("self.all(k, k.startsWith('x'))", {"xa": 1, "xb": 2}, True),
    ("self.exists_one(p, p.n == 1)", [{"n": 1}, {"n": 1}], False),
    ("self in ['', 'HTTP']", "HTTPS", False),
    ("!self.contains('*')", "a*", False),
    ("duration(self) >= duration('1ms')", "1h", True),
    ("duration(self) >= duration('1ms')", "soon", False),
    ("self.b == 1 || true", {}, True),  # CEL's || absorbs an error on one side when the other is true
    ("0 < self && self <= 65535", 70000, False),
    ("self.all(key, 0 < int(key) && int(key) <= 65535)", {"80": {}, "http": {}}, False),
    ("url(self).getScheme() in ['http', 'https']", "ftp://x", False),
])
def test_the_cel_subset_evaluates_as_cel_does(rule: str, value, holds: bool):
    from mesh.config.schema.cel import compile_rule
    assert compile_rule(rule)(value) is holds


@pytest.mark.parametrize("rule", ["self.foo()", "matches(self, 'x')", "self.map(x, x)", "self ~ 1"])
def test_cel_outside_the_subset_is_refused_at_compile_time(rule: str):
    from mesh.config.schema.cel import CelUnsupported, compile_rule
    with pytest.raises(CelUnsupported):
        compile_rule(rule)


def test_an_unsubstituted_placeholder_is_named_as_the_reason_a_value_is_invalid():
    """Trees ship values for envsubst or sed to fill in (gke-networking-recipes' `foo.endpoints.$PROJECT-ID.cloud.goog`,
    asm-labs' subset `$userdefinelabel1`): the finding says so; other invalid values get no such hint."""
    text = ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v, namespace: a}\nspec:\n"
            "  hosts: [foo.endpoints.$PROJECT-ID.cloud.goog, 'b.${ZONE}.example.com', bad_host.example.com]\n"
            "  http:\n  - route:\n    - destination: {host: web, subset: $(SUBSET)}\n")
    got = {f.resource.path: f.message for f in analyze(Snapshot(load_text(text, "p.yaml").objects))
           if f.code == "MS0023"}
    assert got["spec/hosts[0]"].endswith("(it holds $PROJECT-ID, a placeholder to substitute before applying)")
    assert "it holds ${ZONE}" in got["spec/hosts[1]"]
    assert "placeholder" not in got["spec/hosts[2]"]
    assert "it holds $(SUBSET)" in got["spec/http[0]/route[0]/destination/subset"]
