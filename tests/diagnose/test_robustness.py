"""Property test: whatever shape a spec has, every rule finishes (no MS0099) and the runner never raises."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagnose import analyze
from diagnose.rules.config.schema import SHAPES
from mesh.config import ConfigObject, Snapshot, Source

KINDS = sorted(SHAPES) + ["Pod", "Deployment", "Namespace", "Node", "HTTPRoute"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=12),
                    st.sampled_from(["reviews", "*", "*.example.com", "./*", "v1", "STRICT", "ISTIO_MUTUAL", "mesh",
                                     "http", "TCP", "bookinfo/reviews", "@request.auth.claims.x"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["host", "subset", "port", "number", "name", "labels", "hosts", "match",
                                     "route", "destination", "weight", "uri", "prefix", "mode", "tls",
                                     "selector", "matchLabels", "targetPort", "protocol", "gateways", "headers"]),
                    inner, max_size=4)), max_leaves=12)


@st.composite
def objects(draw):
    kind = draw(st.sampled_from(KINDS))
    keys = list(SHAPES.get(kind, {})) or ["template", "containers", "selector", "nodeName", "parentRefs", "rules"]
    spec = draw(st.dictionaries(st.sampled_from(keys), values, max_size=4))
    status = draw(st.one_of(st.none(), values))
    api = "v1" if kind in ("Service", "Pod", "Namespace", "Node") else "apps/v1" if kind == "Deployment" else \
        "gateway.networking.k8s.io/v1" if kind == "HTTPRoute" else ("security.istio.io/v1" if kind in (
        "PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication") else "networking.istio.io/v1")
    name = draw(st.sampled_from(["a", "b", "reviews"]))
    ns = draw(st.sampled_from(["shop", "istio-system", None]))
    labels = draw(st.dictionaries(st.sampled_from(["app", "version"]), st.sampled_from(["reviews", "v1"]),
                                  max_size=2))
    return ConfigObject(api, kind, name, ns, spec=spec, labels=labels, source=Source("gen.yaml", 1),
                        raw={"spec": spec, "status": status})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(objects(), min_size=1, max_size=6))
def test_rules_survive_any_spec_shape(objs):
    findings = analyze(Snapshot(objs))
    crashed = [f.message for f in findings if f.code == "MS0099"]
    assert not crashed, crashed
