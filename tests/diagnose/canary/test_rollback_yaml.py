"""The rollback YAML of a regressing canary sends the route's weight to the stable version's subset, however
the DestinationRule names it, and is never a route with every weight at 0.

At 67169a0 the stable subset was found only by a subset label `version: <stable>`: subsets keyed by
`app.kubernetes.io/version` (a label Istio reads the version from) or by another label the stable pods carry
(`track: stable`) matched nothing, and the "rollback" set every weight to 0 (a host with no destination).
"""
from __future__ import annotations

import pytest
import yaml

from diagnose.canary.findings import findings_of
from diagnose.canary.verdict import Verdict
from mesh.config import load_text

VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cart, namespace: shop}
spec:
  hosts: [cart]
  http:
  - route:
    - {destination: {host: cart, subset: main}, weight: 70}
    - {destination: {host: cart, subset: next}, weight: 30}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cart, namespace: shop}
spec:
  host: cart
  subsets:
  - {name: main, labels: {%s}}
  - {name: next, labels: {%s}}
"""
PODS = """---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cart-%s, namespace: shop}
spec:
  selector: {matchLabels: {app: cart, version: %s, track: %s}}
  template:
    metadata: {labels: {app: cart, version: %s, track: %s}}
    spec: {containers: [{name: c, image: x}]}
"""


def _rollback(text: str) -> dict:
    objs = load_text(text, "mesh.yaml").objects
    v = Verdict("cart.shop.svc.cluster.local", "shop", "v1", "v2", "rollback", 0.999, "v2 is worse", {"requests": {}})
    [f] = findings_of([v], objs)
    return f.evidence


def _weights(ev: dict) -> dict[str, int]:
    doc = yaml.safe_load(ev["rollback_yaml"])
    return {d["destination"]["subset"]: d["weight"] for d in doc["spec"]["http"][0]["route"]}


@pytest.mark.parametrize("stable, canary, pods", [
    ("'app.kubernetes.io/version': v1", "'app.kubernetes.io/version': v2", ""),  # Istio reads the version from it
    ("track: stable", "track: canary", PODS % ("v1", "v1", "stable", "v1", "stable") + PODS % ("v2", "v2", "canary", "v2", "canary")),
    ("version: v1", "version: v2", ""),
])
def test_the_rollback_sends_everything_to_the_subset_selecting_the_stable_pods(stable, canary, pods) -> None:
    ev = _rollback(VS % (stable, canary) + pods)
    assert _weights(ev) == {"main": 100, "next": 0}


def test_no_subset_for_the_stable_version_gives_no_yaml_that_would_zero_every_weight() -> None:
    ev = _rollback(VS % ("track: blue", "track: green"))
    assert "rollback_yaml" not in ev
    assert "v1" in ev["rollback_note"] and "by hand" in ev["rollback_note"]
