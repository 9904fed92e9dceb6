"""Dry-run AuthorizationPolicies: what their Envoy shadow rules decided, beside what the traffic predicts.

A policy annotated `istio.io/dry-run: "true"` is pushed as RBAC `shadow_rules`; Envoy counts each
shadow decision as `<hcm prefix>.rbac.istio_dry_run_{deny,allow}_shadow_{allowed,denied}` and
exports it on the sidecar's Prometheus endpoint (Envoy joins prefix and name with one more
`_`: `envoy_http_rbac_istio_dry_run_deny__shadow_denied{envoy_http_conn_manager_prefix=...}`). Here those counters are read per workload, and the
same policy without the annotation is replayed over the window's edges, so the user sees both.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from diagnose.catalog import make
from diagnose.findings import Finding
from diagnose.whatif.replay import DRY_RUN, predict
from mesh.config.model import ConfigObject

_SHADOW = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*?istio_dry_run_(?P<action>allow|deny)_+shadow_(?P<result>allowed|denied))"
                     r"(?:\{[^}]*\})?\s+(?P<value>[-+0-9.eE]+|NaN)\s*$")


@dataclass
class ShadowCount:
    action: str  # deny | allow (which dry-run engine)
    allowed: float
    denied: float


def shadow_counts(exposition: str) -> ShadowCount | None:
    """Sum of the dry-run shadow counters in one sidecar's /stats/prometheus text (None: no dry-run policy).

    Both engines are summed into `denied` when either shadow engine would deny; lines that do
    not parse are skipped (the text is untrusted)."""
    got: dict[tuple[str, str], float] = {}
    for line in exposition.splitlines():
        m = _SHADOW.match(line.strip())
        if not m:
            continue
        try:
            v = float(m.group("value"))
        except ValueError:
            continue
        key = (m.group("action"), m.group("result"))
        got[key] = got.get(key, 0.0) + (v if v == v else 0.0)
    if not got:
        return None
    denied = got.get(("deny", "denied"), 0.0) + got.get(("allow", "denied"), 0.0)
    allowed = max(got.get(("deny", "allowed"), 0.0), got.get(("allow", "allowed"), 0.0))
    action = "deny" if any(a == "deny" for a, _ in got) else "allow"
    return ShadowCount(action, allowed, denied)


def enforced_copy(ap: ConfigObject) -> ConfigObject:
    """The same policy without the dry-run annotation: what removing it would enforce."""
    out = copy.copy(ap)
    out.annotations = {k: v for k, v in (ap.annotations or {}).items() if k != DRY_RUN}
    out.spec = copy.deepcopy(ap.spec)
    return out


def dry_run_findings(live: list[ConfigObject], counts: dict[tuple[str, str], ShadowCount], rates: pd.DataFrame,
                     window_s: float, trust_domain: str = "cluster.local") -> list[Finding]:
    """MS5006 per dry-run policy and workload whose shadow rules denied requests, with the prediction beside."""
    out = []
    dry = [o for o in live if o.kind == "AuthorizationPolicy" and str(o.annotations.get(DRY_RUN, "")).lower() == "true"]
    for ap in dry:
        rep = predict(live, [enforced_copy(ap)], rates, window_s, trust_domain=trust_domain, findings=False)
        by_dest: dict[str, float] = {}
        for i in rep.impacts:
            by_dest[i.destination] = by_dest.get(i.destination, 0.0) + i.broken_rps
        for (ns, wl), c in sorted(counts.items()):
            if ns != ap.namespace or c.denied <= 0:
                continue
            dest = f"{ns}/{wl}"
            out.append(make("MS5006", None, evidence={"edge_key": f"{ap.namespace}/{ap.name}:{dest}",
                                                      "shadow_denied": c.denied, "shadow_allowed": c.allowed,
                                                      "predicted_rps": by_dest.get(dest, 0.0)},
                            destination=dest, policy=f"{ap.namespace}/{ap.name}", count=f"{c.denied:.0f}",
                            predicted=f"{by_dest.get(dest, 0.0):.3g}"))
    return out


def predicted_denials(live: list[ConfigObject], rates: pd.DataFrame, window_s: float) -> dict[str, Any]:
    """Per dry-run policy: the edges it would deny if enforced (for the UI and reports)."""
    out = {}
    for ap in live:
        if ap.kind == "AuthorizationPolicy" and str(ap.annotations.get(DRY_RUN, "")).lower() == "true":
            rep = predict(live, [enforced_copy(ap)], rates, window_s, findings=False)
            out[f"{ap.namespace}/{ap.name}"] = [
                {"source": i.source, "destination": i.destination, "rps": i.broken_rps, "certain": i.certain}
                for i in rep.impacts]
    return out
