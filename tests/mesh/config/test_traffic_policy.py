"""One reading of DestinationRule traffic policy: the walker against Istio's rule, and every reader against the walker.

Istio's rule (pilot/pkg/networking/util MergeSubsetTrafficPolicy, read at istio/istio 86c9f01; the hand-written
cases below follow the situations its TestMergeSubsetTrafficPolicy covers, with our own values): a matching
port-level entry replaces its policy wholesale, a subset overrides the top level section by section. The
differential part generates DestinationRule shapes (top level, subsets, port level, number/string/absent ports,
duplicate entries, malformed values) and asks each reader the same question; they must all answer as the walker.
"""
from __future__ import annotations

import random
import textwrap
from typing import Any

import pytest

from diagnose import analyze
from diagnose.correlate import correlate, policy_settings
from diagnose.rules.config import security as sec
from diagnose.rules.config import tls_fields as tf
from diagnose.rules.config import workload_mtls
from diagnose.rules.runtime import RuntimeContext, analyze_runtime
from mesh.config import ConfigObject, Snapshot, load_text
from mesh.config.traffic_policy import (PORT_SECTIONS, SECTIONS, effective, effective_policy, places, subset_index,
                                        tls_mode)
from mesh.controlplane import policy as cp
from tests.diagnose.runtime.tables import T0, fqdn, requests
from tests.diagnose.runtime.test_correlate import BOOKINFO


def spec_of(text: str) -> dict[str, Any]:
    import yaml
    return yaml.safe_load(textwrap.dedent(text))


# -- Istio's rule on hand-written cases --------------------------------------------------------------------------
BOTH_LEVELS = """
trafficPolicy:
  loadBalancer: {simple: ROUND_ROBIN}
  outlierDetection: {consecutive5xxErrors: 20}
  portLevelSettings: [{port: {number: 8080}, outlierDetection: {consecutive5xxErrors: 15}}]
subsets:
- name: v1
  trafficPolicy:
    connectionPool: {http: {maxRetries: 7}}
    portLevelSettings: [{port: {number: 8080}, outlierDetection: {consecutive5xxErrors: 13}}]
"""
CASES = [
    ("top level only, no subset", """
     trafficPolicy: {connectionPool: {http: {maxRetries: 4}}}
     """, 9080, None, {"connectionPool": {"http": {"maxRetries": 4}}}),
    ("a subset without policy takes the top level", """
     trafficPolicy: {connectionPool: {http: {maxRetries: 4}}}
     subsets: [{name: v1}]
     """, 9080, "v1", {"connectionPool": {"http": {"maxRetries": 4}}}),
    ("no top level: the subset's policy", """
     subsets: [{name: v1, trafficPolicy: {outlierDetection: {consecutive5xxErrors: 2}}}]
     """, None, "v1", {"outlierDetection": {"consecutive5xxErrors": 2}}),
    ("sections set at different levels combine", """
     trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
     subsets: [{name: v1, trafficPolicy: {connectionPool: {tcp: {maxConnections: 3}},
                                          tunnel: {protocol: CONNECT, targetHost: t, targetPort: 443}}}]
     """, None, "v1", {"tls": {"mode": "ISTIO_MUTUAL"}, "connectionPool": {"tcp": {"maxConnections": 3}},
                       "tunnel": {"protocol": "CONNECT", "targetHost": "t", "targetPort": 443}}),
    ("a subset's section replaces the top level's whole (no field merge)", """
     trafficPolicy: {tls: {mode: SIMPLE, sni: a.example}, connectionPool: {tcp: {maxConnections: 9}, http: {maxRetries: 1}}}
     subsets: [{name: v1, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}, connectionPool: {http: {maxRetries: 5}}}}]
     """, None, "v1", {"tls": {"mode": "ISTIO_MUTUAL"}, "connectionPool": {"http": {"maxRetries": 5}}}),
    ("a subset's port-level entry stands in for the subset's whole policy", """
     subsets:
     - name: v1
       trafficPolicy:
         loadBalancer: {simple: ROUND_ROBIN}
         connectionPool: {http: {maxRetries: 7}}
         portLevelSettings: [{port: {number: 8080}, loadBalancer: {simple: LEAST_REQUEST}}]
     """, 8080, "v1", {"loadBalancer": {"simple": "LEAST_REQUEST"}}),
    ("both levels with port-level entries: only the subset's entry counts", BOTH_LEVELS, 8080, "v1", {"outlierDetection": {"consecutive5xxErrors": 13}}),
    ("entries for another port change nothing", BOTH_LEVELS, 9090, "v1", {"loadBalancer": {"simple": "ROUND_ROBIN"}, "outlierDetection": {"consecutive5xxErrors": 20},
                       "connectionPool": {"http": {"maxRetries": 7}}}),
    ("retryBudget survives a subset that does not set it, and a subset's replaces it", """
     trafficPolicy: {retryBudget: {minRetryConcurrency: 5}}
     subsets: [{name: v1, trafficPolicy: {connectionPool: {http: {maxRetries: 2}}}},
               {name: v2, trafficPolicy: {retryBudget: {minRetryConcurrency: 9}}}]
     """, None, "v1", {"retryBudget": {"minRetryConcurrency": 5}, "connectionPool": {"http": {"maxRetries": 2}}}),
    ("a top-level port entry drops the top level's tls, tunnel and proxyProtocol", """
     trafficPolicy:
       tls: {mode: DISABLE}
       proxyProtocol: {version: V2}
       portLevelSettings: [{port: {number: 9080}, connectionPool: {tcp: {maxConnections: 7}}}]
     """, 9080, None, {"connectionPool": {"tcp": {"maxConnections": 7}}}),
    ("a subset's port entry keeps the top level's tunnel but not its tls", """
     trafficPolicy: {tls: {mode: DISABLE}, tunnel: {protocol: CONNECT, targetHost: t, targetPort: 1}}
     subsets:
     - name: v1
       trafficPolicy:
         tls: {mode: SIMPLE}
         portLevelSettings: [{port: {number: 9080}, loadBalancer: {simple: RANDOM}}]
     """, 9080, "v1", {"tunnel": {"protocol": "CONNECT", "targetHost": "t", "targetPort": 1},
                       "loadBalancer": {"simple": "RANDOM"}}),
    ("the first matching entry wins", """
     trafficPolicy:
       portLevelSettings: [{port: {number: 9080}, tls: {mode: DISABLE}}, {port: {number: 9080}, tls: {mode: SIMPLE}}]
     """, 9080, None, {"tls": {"mode": "DISABLE"}}),
    ("no port known: port-level entries do not apply", """
     trafficPolicy: {tls: {mode: SIMPLE}, portLevelSettings: [{port: {number: 9080}, tls: {mode: DISABLE}}]}
     """, None, None, {"tls": {"mode": "SIMPLE"}}),
    ("an undefined subset is the default cluster", """
     trafficPolicy: {tls: {mode: SIMPLE}}
     subsets: [{name: v1, trafficPolicy: {tls: {mode: DISABLE}}}]
     """, None, "v9", {"tls": {"mode": "SIMPLE"}}),
]


@pytest.mark.parametrize("text,port,subset,want", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_istio_rule(text, port, subset, want):
    spec = spec_of(text)
    assert effective_policy(spec, port, subset) == want
    dr = ConfigObject("networking.istio.io/v1", "DestinationRule", "r", "default", spec=spec)
    assert cp.traffic_policy(dr, port if port is not None else 0, subset) == want  # what the bundled mesh sends


def test_paths_name_the_level_in_force():
    spec = spec_of("""
    trafficPolicy: {tls: {mode: DISABLE}, portLevelSettings: [{port: {number: 80}}, {port: {number: 9080}, tls: {mode: SIMPLE}}]}
    subsets: [{name: v1, trafficPolicy: {portLevelSettings: [{port: {number: 9080}, tls: {mode: ISTIO_MUTUAL}}]}}]
    """)
    assert effective(spec, 9080)["tls"].path == "spec/trafficPolicy/portLevelSettings[1]/tls"
    assert effective(spec, 9080, "v1")["tls"].path == "spec/subsets[0]/trafficPolicy/portLevelSettings[0]/tls"
    assert effective(spec, 443)["tls"].path == "spec/trafficPolicy/tls"
    assert "tls" not in effective(spec, 80)  # the entry for 80 sets no tls: the default, not DISABLE


# -- the differential harness --------------------------------------------------------------------------------------
PORT_VALUES = [9080, "9080", 80, None, "name-only", True]  # True: a YAML `yes`, not port 1


def _section(r: random.Random, name: str) -> Any:
    if r.random() < 0.05:
        return r.choice(["oops", [], None])  # malformed: reads as absent
    if name == "tls":
        mode = r.choice(["DISABLE", "ISTIO_MUTUAL", "SIMPLE", "MUTUAL", "UNSET", None])
        return {} if mode is None else {"mode": mode}
    return {name: {"n": r.randint(1, 9)}}


def _policy(r: random.Random) -> Any:
    if r.random() < 0.1:
        return r.choice([None, {}, "bad", []])
    out: dict[str, Any] = {name: _section(r, name) for name in SECTIONS if r.random() < 0.4}
    if r.random() < 0.6:
        entries: list[Any] = []
        for _ in range(r.randint(0, 3)):
            p = r.choice(PORT_VALUES)
            entry: dict[str, Any] = {"port": {"name": "http"} if p == "name-only" else {"number": p}}
            if r.random() < 0.1:
                entry.pop("port")
            entry.update({name: _section(r, name) for name in PORT_SECTIONS if r.random() < 0.4})
            entries.append(entry if r.random() > 0.05 else "bad")
        out["portLevelSettings"] = entries if r.random() > 0.05 else {"port": 9080}
    return out


def shapes(n: int = 300, seed: int = 14) -> list[dict[str, Any]]:
    r = random.Random(seed)
    out = []
    for _ in range(n):
        spec: dict[str, Any] = {"host": "reviews"}
        if (tp := _policy(r)) is not None:
            spec["trafficPolicy"] = tp
        subsets: list[Any] = []
        for name in r.sample(["v1", "v2", "v1", None], r.randint(0, 3)):  # duplicate and missing names too
            s: dict[str, Any] = {"labels": {"version": str(name)}}
            if name is not None:
                s["name"] = name
            if r.random() < 0.7 and (p := _policy(r)) is not None:
                s["trafficPolicy"] = p
            subsets.append(s)
        if subsets:
            spec["subsets"] = subsets
        out.append(spec)
    return out


SHAPES = shapes()
QUERIES = [(port, subset) for port in (9080, 80, None) for subset in ("", "v1", "v2", "v9")]


def _istio_reference(spec: Any, port: int | None, subset: str) -> dict[str, Any]:
    """Istio's merge, structured as its Go code is (port-level shadow copy, then MergeTrafficPolicy), on dicts:
    an oracle written apart from the walker."""
    def good(v: Any) -> dict[str, Any]:
        return v if isinstance(v, dict) else {}

    def port_level(policy: Any) -> tuple[dict[str, Any], bool]:
        policy = good(policy)
        for e in policy.get("portLevelSettings") if isinstance(policy.get("portLevelSettings"), list) else []:
            number = good(good(e).get("port")).get("number")
            if port is not None and type(number) in (int, str) and str(number) == str(port):
                return {k: e[k] for k in PORT_SECTIONS if isinstance(e.get(k), dict)}, True
        return {k: policy[k] for k in SECTIONS if isinstance(policy.get(k), dict)}, False

    spec = good(spec)
    original, _ = port_level(spec.get("trafficPolicy"))
    subsets = spec.get("subsets") if isinstance(spec.get("subsets"), list) else []
    chosen = next((s for s in subsets if isinstance(s, dict) and subset and s.get("name") == subset), None)
    if chosen is None:
        return original
    sub, has_port_level = port_level(chosen.get("trafficPolicy"))
    merged = dict(original)
    for k in SECTIONS:
        if k in sub:
            merged[k] = sub[k]
        elif has_port_level and k in PORT_SECTIONS:
            merged.pop(k, None)
    return merged


def _snapshot(spec: dict[str, Any]) -> tuple[ConfigObject, Snapshot]:
    dr = ConfigObject("networking.istio.io/v1", "DestinationRule", "reviews", "default", spec=spec)
    return dr, Snapshot([dr])


def test_walker_matches_the_reference_on_every_shape():
    for spec in SHAPES:
        for port, subset in QUERIES:
            assert effective_policy(spec, port, subset) == _istio_reference(spec, port, subset), (spec, port, subset)


def test_control_plane_agrees_with_the_walker():
    for spec in SHAPES:
        dr, _ = _snapshot(spec)
        for port, subset in QUERIES:
            assert cp.traffic_policy(dr, port or 0, subset or None) == effective_policy(spec, port, subset), spec


def test_correlator_agrees_with_the_walker():
    for spec in SHAPES:
        dr, _ = _snapshot(spec)
        for key in ("tls", "outlierDetection", "connectionPool"):
            everywhere = [(s.path, s.value) for s in places(spec, key)]
            assert policy_settings(dr, key) == everywhere  # unknown cluster: every place, none missed
            for port, subset in QUERIES:
                if port is None:
                    continue
                found = effective(spec, port, subset).get(key)
                assert policy_settings(dr, key, str(port), subset) == ([(found.path, found.value)] if found else []), \
                    (spec, port, subset, key)
                assert all(p in everywhere for p in policy_settings(dr, key, str(port), subset))


def test_client_mode_agrees_with_the_walker():
    for spec in SHAPES:
        dr, snap = _snapshot(spec)
        for port in (9080, 80, None):
            got = sec.client_mode(snap, "reviews.default.svc.cluster.local", "default",
                                  str(port) if port is not None else None)
            tls = effective(spec, port).get("tls")
            assert got.rule is dr
            assert (got.mode, got.path) == ((tf.mode_of(tls_mode(tls.value)), f"{tls.path}/mode") if tls else
                                            (None, None)), (spec, port)


def test_subset_modes_agree_with_the_walker():
    for spec in SHAPES:
        dr, _ = _snapshot(spec)
        for port in (9080, 80, None):
            want = []
            for name in dict.fromkeys(s.get("name") for s in spec.get("subsets", []) if isinstance(s, dict)):
                if not isinstance(name, str):
                    continue
                tls = effective(spec, port, name).get("tls")
                k = subset_index(spec, name)
                if tls and tls.path.startswith(f"spec/subsets[{k}]/") and tf.mode_of(tls_mode(tls.value)):
                    want.append((tf.mode_of(tls_mode(tls.value)), f"{tls.path}/mode"))
            got = [(m, p) for m, p, _ in workload_mtls._subset_modes(dr, str(port) if port is not None else None)]
            assert got == want, (spec, port)


def _rule_sets(n: int = 1500, seed: int = 14) -> list[list[ConfigObject]]:
    """DestinationRules for one host spread over namespaces, hosts (short, FQDN, wildcards), exportTo values and
    workloadSelectors."""
    r = random.Random(seed)
    hosts = ["reviews", "reviews.bookinfo.svc.cluster.local", "*.bookinfo.svc.cluster.local", "*.local", "*",
             "*.svc.cluster.local", "ratings"]
    exports: list[Any] = [None, ["."], ["*"], ["bookinfo"], ["other"], ["istio-system"], [".", "other"], ["~"]]
    out = []
    for _ in range(n):
        drs = []
        for k in range(r.randint(1, 4)):
            spec: dict[str, Any] = {"host": r.choice(hosts)}
            if (e := r.choice(exports)) is not None:
                spec["exportTo"] = e
            if r.random() < 0.15:
                spec["workloadSelector"] = {"matchLabels": {"app": "productpage"}}
            drs.append(ConfigObject("networking.istio.io/v1", "DestinationRule", f"d{k}",
                                    r.choice(["bookinfo", "other", "istio-system"]), spec=spec))
        out.append(drs)
    return out


def test_rule_lookup_agrees_between_control_plane_and_diagnosis():
    """Which DestinationRule a client namespace takes: the control plane's ConfigIndex and the rules' client_mode
    give the same answer on every generated set; a workloadSelector rule counts only with the client's labels."""
    host = "reviews.bookinfo.svc.cluster.local"
    for drs in _rule_sets():
        index, snap = cp.ConfigIndex(drs), Snapshot(drs)
        for ns in ("bookinfo", "other", "istio-system"):
            assert index.destination_rule(host, ns, "bookinfo") is sec.client_mode(snap, host, ns).rule, (drs, ns)
            picked = index.destination_rule(host, ns, "bookinfo", {"app": "productpage"})
            if picked is not None and "workloadSelector" in picked.spec:
                assert picked.namespace == ns


# -- what a user sees: findings and explanations that changed ------------------------------------------------------
MESH = BOOKINFO + """---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: bookinfo}
spec: {mtls: {mode: STRICT}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews
"""
# DISABLE somewhere, then a port-level entry for the Service's port (or another port) that sets no tls
DRS = {
    "top": """  trafficPolicy:
    tls: {mode: DISABLE}
    connectionPool: {http: {http1MaxPendingRequests: 1}}
    portLevelSettings: [{port: {number: PORT}, outlierDetection: {consecutive5xxErrors: 3}}]
""",
    "subset": """  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      tls: {mode: DISABLE}
      portLevelSettings: [{port: {number: PORT}, connectionPool: {tcp: {maxConnections: 5}}}]
""",
}


def snapshot_of(where: str, port: int) -> Snapshot:
    loaded = load_text(MESH + DRS[where].replace("PORT", str(port)), "mesh.yaml")
    assert not loaded.problems, loaded.problems
    return Snapshot(loaded.objects)


@pytest.mark.parametrize("where", sorted(DRS))
def test_port_entry_without_tls_is_auto_mtls_not_a_conflict(where):
    """MS2010 (STRICT server, DISABLE client) only where Istio's client really sends plaintext: on 9080 the
    port-level entry replaces the DISABLE (auto mTLS); an entry for another port leaves it in force."""
    assert "MS2010" not in {f.code for f in analyze(snapshot_of(where, 9080))}
    assert "MS2010" in {f.code for f in analyze(snapshot_of(where, 9443))}


@pytest.mark.parametrize("outcome,section", [("mtls_plaintext", "tls"), ("overflow", "connectionPool")])
def test_explanation_follows_the_port_entry(outcome, section):
    """503s logged on outbound|9080||reviews: the top-level tls and connectionPool that the 9080 entry replaces
    did not act on them, so no runtime finding blames them (nor a field under them); with the entry on another
    port the section is the cause named."""
    df = requests("productpage-v1", fqdn("reviews"), outcome, 20)
    for port, blamed in ((9080, False), (9443, True)):
        snap = snapshot_of("top", port)
        runtime = analyze_runtime(RuntimeContext(start=T0, end=T0 + 30, requests=df, snapshot=snap))
        out = [f for f in correlate(runtime, analyze(snap), snap) if f.code.startswith("MS3")]
        assert out, port
        paths = [f.resource.path or "" for f in out if f.resource.kind == "DestinationRule"]
        if blamed:
            assert any(p.startswith(f"spec/trafficPolicy/{section}") for p in paths), (port, paths)
        else:  # neither the tls nor the connectionPool (keep-alive race) the entry replaced
            assert not [p for p in paths if p.startswith(("spec/trafficPolicy/tls", "spec/trafficPolicy/connection"))]


@pytest.mark.parametrize("tls", ["{}", "{sni: reviews.example}"])
def test_tls_block_without_mode_is_disable(tls):
    """A tls block without a mode is DISABLE in Istio (the enum's zero value): the STRICT conflict is found and the
    plaintext 503s are blamed on that block, as for an explicit DISABLE."""
    loaded = load_text(MESH + f"  trafficPolicy: {{tls: {tls}}}\n", "mesh.yaml")
    assert not loaded.problems, loaded.problems
    snap = Snapshot(loaded.objects)
    config = analyze(snap)
    assert [f.resource.path for f in config if f.code == "MS2010"] == ["spec/trafficPolicy/tls/mode"]
    df = requests("productpage-v1", fqdn("reviews"), "mtls_plaintext", 20)
    runtime = analyze_runtime(RuntimeContext(start=T0, end=T0 + 30, requests=df, snapshot=snap))
    (f,) = [f for f in correlate(runtime, config, snap) if f.code.startswith("MS3")]
    assert (f.resource.kind, f.resource.path) == ("DestinationRule", "spec/trafficPolicy/tls/mode")


@pytest.mark.parametrize("dr,breaks", [
    ("  trafficPolicy: {tls: {sni: details.example}}\n", True),  # no mode: DISABLE, plaintext to a STRICT server
    ("  trafficPolicy:\n    tls: {mode: DISABLE}\n"
     "    portLevelSettings: [{port: {number: 9080}, connectionPool: {tcp: {maxConnections: 9}}}]\n", False),
])
def test_whatif_verdict_follows_the_tls_in_force(dr, breaks):
    """What-if on a STRICT namespace: the verdict follows the tls Istio applies to the caller's cluster."""
    from diagnose.whatif import predict
    from diagnose.whatif.replay import overlay
    from tests.diagnose.whatif.test_replay import _live
    from tests.diagnose.whatif.test_tls_changes import STRICT_NS, _broken, _objs, _window

    live = overlay(_live(), _objs(STRICT_NS))
    text = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: details, namespace: bookinfo}\n" \
           "spec:\n  host: details\n" + dr
    got = _broken(predict(live, _objs(text), _window(), 3600, findings=False))
    assert bool(got) is breaks, got
    if breaks:
        assert set(got) == {("bookinfo/productpage-v1", "bookinfo/details-v1")}


@pytest.mark.parametrize("tls,flagged", [("{mode: DISABLE}", True), ("{sni: x.example}", True),
                                         ("{mode: ISTIO_MUTUAL}", False)])
def test_namespace_rule_without_mode_disables_tls_under_strict(tls, flagged):
    """Kiali's check (MS2007, namespace-wide DestinationRule disabling TLS under STRICT) reads the mode as Istio
    does: a tls block without one is DISABLE."""
    loaded = load_text(f"""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: strict, namespace: bookinfo}}
spec: {{mtls: {{mode: STRICT}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: all, namespace: bookinfo}}
spec:
  host: "*.bookinfo.svc.cluster.local"
  trafficPolicy: {{tls: {tls}}}
""", "mesh.yaml")
    assert not loaded.problems, loaded.problems
    assert ("MS2007" in {f.code for f in analyze(Snapshot(loaded.objects))}) is flagged


@pytest.mark.parametrize("export,conflict", [("", False), ("  exportTo: [.]\n", True)])
def test_root_namespace_clients_take_the_service_rule_before_mesh_wide_ones(export, conflict):
    """Istio's lookup for a client in the root namespace (an ingress gateway): the service namespace's rule comes
    before the root's exported `*.local` one, so its DISABLE does not reach reviews' STRICT pods; a private root rule
    (exportTo ".") is the gateway's own and does."""
    loaded = load_text(MESH + f"""  trafficPolicy: {{tls: {{mode: ISTIO_MUTUAL}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: mesh, namespace: istio-system}}
spec:
{export}  host: "*.local"
  trafficPolicy: {{tls: {{mode: DISABLE}}}}
""", "mesh.yaml")
    assert not loaded.problems, loaded.problems
    snap = Snapshot(loaded.objects)
    client = sec.client_mode(snap, "reviews.bookinfo.svc.cluster.local", "istio-system")
    assert (client.rule.namespace, client.mode) == (("istio-system", "DISABLE") if conflict else
                                                    ("bookinfo", "ISTIO_MUTUAL"))
    found = [f for f in analyze(snap) if f.code == "MS2010" and "clients of reviews." in f.message]
    assert bool(found) is conflict, [f.message for f in found]  # (ratings has no rule of its own: DISABLE reaches it)
