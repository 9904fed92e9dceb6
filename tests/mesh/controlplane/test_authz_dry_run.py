"""`istio.io/dry-run: "true"` AuthorizationPolicies become Envoy shadow rules: decided and counted, never enforced."""
from __future__ import annotations

import json
import subprocess

import pytest

from mesh.controlplane.translate import LDS
from mesh.dataplane.envoy import envoy_binary
from tests.mesh.controlplane.test_translate import build, node

DRY = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all-dry, namespace: bookinfo, annotations: {istio.io/dry-run: "true"}}
spec:
  selector: {matchLabels: {app: ratings}}
  action: DENY
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-reviews-dry, namespace: bookinfo, annotations: {istio.io/dry-run: "true"}}
spec:
  selector: {matchLabels: {app: ratings}}
  rules: [{from: [{source: {principals: ["cluster.local/ns/bookinfo/sa/bookinfo-reviews"]}}]}]
"""
ENFORCED = """
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-delete, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: ratings}}
  action: DENY
  rules: [{to: [{operation: {methods: [DELETE]}}]}]
"""


def _filters(text: str) -> list[dict]:
    reg, proxies = build(text)
    chain = node(reg, proxies, "ratings-v1").resources[LDS]["inbound_9080"]["filter_chains"][0]
    return chain["filters"][0]["typed_config"]["http_filters"]


def test_dry_run_policies_are_shadow_rules_only():
    rbac = [f["typed_config"] for f in _filters(DRY) if f["name"] == "envoy.filters.http.rbac"]
    assert [("rules" in c, c["shadow_rules"]["action"], c["shadow_rules_stat_prefix"]) for c in rbac] == [
        (False, "DENY", "istio_dry_run_deny_"), (False, "ALLOW", "istio_dry_run_allow_")]
    assert list(rbac[0]["shadow_rules"]["policies"]) == ["ns[bookinfo]-policy[deny-all-dry]-rule[0]"]


def test_enforced_policies_keep_enforcing_beside_dry_run_ones():
    rbac = [f["typed_config"] for f in _filters(DRY + ENFORCED) if f["name"] == "envoy.filters.http.rbac"]
    enforced = [c for c in rbac if "rules" in c]
    assert [c["rules"]["action"] for c in enforced] == ["DENY"]
    assert list(enforced[0]["rules"]["policies"]) == ["ns[bookinfo]-policy[deny-delete]-rule[0]"]
    assert sorted(c["shadow_rules_stat_prefix"] for c in rbac if "shadow_rules" in c) == [
        "istio_dry_run_allow_", "istio_dry_run_deny_"]


def test_envoy_accepts_the_shadow_filters(tmp_path):
    """The real Envoy binary validates a listener carrying the generated filters."""
    filters = _filters(DRY + ENFORCED)
    boot = {"static_resources": {"listeners": [{
        "name": "l", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 1}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "t", "route_config": {"name": "r", "virtual_hosts": []}, "http_filters": filters}}]}]}]}}
    path = tmp_path / "boot.json"
    path.write_text(json.dumps(boot))
    try:
        binary = envoy_binary()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"envoy binary not found: {exc}")
    r = subprocess.run([binary, "--mode", "validate", "-c", str(path), "--log-level", "error"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
