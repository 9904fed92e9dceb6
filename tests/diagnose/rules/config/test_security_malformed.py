"""Malformed security objects never crash a rule (a crash would surface as MS0099 and hide findings)."""
from __future__ import annotations

import pytest

from diagnose import analyze
from diagnose.rules import ALL_RULES
from diagnose.rules.config.snapshot_rule import SnapshotRule
from mesh.config import MeshConfig, Snapshot, load_text

WORKLOADS = """
apiVersion: v1
kind: Namespace
metadata: {name: ns}
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: ns}
spec: {selector: {app: a}, ports: [{port: 80, targetPort: http}, {port: "x"}, 7]}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: ns, labels: {app: a}}
spec: {containers: [{name: a, image: a}, "junk"]}
---
apiVersion: v1
kind: Secret
metadata: {name: cred, namespace: ns}
data: {tls.crt: "%%%", tls.key: 5}
"""
MALFORMED = {
    "pa-mtls-string": "kind: PeerAuthentication\nspec: {mtls: STRICT, selector: [app]}",
    "pa-ports-list": "kind: PeerAuthentication\nspec: {selector: {matchLabels: {app: a}}, portLevelMtls: [80]}",
    "pa-port-mode-number": "kind: PeerAuthentication\nspec: {selector: {matchLabels: {app: a}}, portLevelMtls: {80: {mode: 3}}}",
    "dr-host-number": "kind: DestinationRule\nspec: {host: 42, trafficPolicy: {tls: DISABLE}}",
    "dr-tls-list": "kind: DestinationRule\nspec: {host: svc, trafficPolicy: {tls: [DISABLE], portLevelSettings: {port: 80}}}",
    "dr-subsets-junk": "kind: DestinationRule\nspec: {host: svc, subsets: [junk, {labels: [1], trafficPolicy: {tls: {mode: DISABLE}}}]}",
    "dr-port-no-number": "kind: DestinationRule\nspec: {host: svc, trafficPolicy: {portLevelSettings: [{tls: {mode: SIMPLE}}, 3]}}",
    "ap-rules-dict": "kind: AuthorizationPolicy\nspec: {rules: {from: x}}",
    "ap-from-junk": "kind: AuthorizationPolicy\nspec: {rules: [{from: [junk, {source: [1]}], to: [{operation: {methods: [1, null]}}], when: [3]}]}",
    "ap-principals-junk": "kind: AuthorizationPolicy\nspec: {rules: [{from: [{source: {principals: [1, {a: b}, 'x/ns/y'], namespaces: [2]}}]}]}",
    "gw-servers-junk": "kind: Gateway\nspec: {selector: {app: a}, servers: [junk, {port: 443, tls: {mode: 5}}, {tls: {credentialName: [x]}}]}",
    "gw-selector-list": "kind: Gateway\nspec: {selector: [a], servers: [{port: {protocol: HTTPS}, tls: {credentialName: cred}}]}",
    "ra-selector-string": "kind: RequestAuthentication\nspec: {selector: app}",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
@pytest.mark.parametrize("auto_mtls", [True, False])
def test_malformed_object_does_not_crash_security_rules(name, auto_mtls):
    body = MALFORMED[name]
    group = "networking.istio.io/v1" if any(k in body for k in ("DestinationRule", "Gateway")) else "security.istio.io/v1"
    doc = f"apiVersion: {group}\n{body.splitlines()[0]}\nmetadata: {{name: bad, namespace: ns}}\n{body.splitlines()[1]}\n"
    loaded = load_text(WORKLOADS + "---\n" + doc, "bad.yaml")
    findings = analyze(Snapshot(loaded.objects, MeshConfig(enable_auto_mtls=auto_mtls)), problems=loaded.problems)
    ours = [r.metadata.name for r in ALL_RULES if isinstance(r, SnapshotRule)]
    crashes = [f.message for f in findings if f.code == "MS0099" and any(n in f.message for n in ours)]
    assert crashes == []
