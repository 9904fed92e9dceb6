"""Reading Envoy's dry-run shadow counters (lines as a bundled-mesh sidecar exports them)."""
from __future__ import annotations

from diagnose.whatif.dryrun import enforced_copy, shadow_counts
from mesh.config import load_text

RECORDED = """# TYPE envoy_http_rbac_allowed counter
envoy_http_rbac_allowed{envoy_http_conn_manager_prefix="inbound_9080"} 0
# TYPE envoy_http_rbac_istio_dry_run_deny__shadow_allowed counter
envoy_http_rbac_istio_dry_run_deny__shadow_allowed{envoy_http_conn_manager_prefix="inbound_9080"} 3
# TYPE envoy_http_rbac_istio_dry_run_deny__shadow_denied counter
envoy_http_rbac_istio_dry_run_deny__shadow_denied{envoy_http_conn_manager_prefix="inbound_9080"} 41
envoy_http_rbac_istio_dry_run_allow__shadow_denied{envoy_http_conn_manager_prefix="inbound_9080"} 2
envoy_http_rbac_istio_dry_run_deny__shadow_denied{broken 7
envoy_http_rbac_istio_dry_run_deny__shadow_denied{a="b"} lots
"""


def test_shadow_counters_are_summed_and_garbage_skipped() -> None:
    c = shadow_counts(RECORDED)
    assert (c.action, c.denied, c.allowed) == ("deny", 43.0, 3.0)


def test_no_dry_run_policy_is_none() -> None:
    assert shadow_counts('envoy_http_rbac_denied{envoy_http_conn_manager_prefix="inbound_9080"} 4\n') is None


def test_enforced_copy_drops_only_the_annotation() -> None:
    [ap] = load_text("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n"
                     "  annotations: {istio.io/dry-run: \"true\", team: a}\nspec: {action: DENY, rules: [{}]}\n").objects
    out = enforced_copy(ap)
    assert out.annotations == {"team": "a"} and ap.annotations["istio.io/dry-run"] == "true"
    assert out.spec == ap.spec and out.spec is not ap.spec
