"""Which Istio policy applies where: DestinationRule lookup, traffic policy merging, mTLS modes.

These are Istio's resolution rules, kept apart from the Envoy translators so each
translator only turns an already-chosen policy into Envoy JSON:
- a DestinationRule is looked up in the client's namespace, then the service's,
  then the root namespace (`rule_search`: a client in the root namespace takes the
  root's exported rules only after the service's); an exact host beats a wildcard;
- a port-level entry replaces its policy's sections wholesale, and a subset's policy
  overrides the top level section by section (`mesh.config.traffic_policy`);
- PeerAuthentication: workload selector > namespace > mesh (root namespace) >
  PERMISSIVE, with `portLevelMtls` overriding the mode of one port.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mesh.config.hosts import visible
from mesh.config.model import ConfigObject
from mesh.config.traffic_policy import effective_policy, private_only, rule_search, selects
from mesh.controlplane.registry import Workload, fqdn

ROOT_NAMESPACE = "istio-system"
MTLS_MODES = ("STRICT", "PERMISSIVE", "DISABLE")


def host_matches(pattern: str, host: str) -> bool:
    """Istio host match: exact, `*`, or a `*.suffix` wildcard."""
    if pattern == "*" or pattern == host:
        return True
    return pattern.startswith("*.") and host.endswith(pattern[1:])


@dataclass
class ConfigIndex:
    """The Istio objects of one config version, grouped by kind."""

    objects: list[ConfigObject]
    root_namespace: str = ROOT_NAMESPACE

    def __post_init__(self) -> None:
        self.by_kind: dict[str, list[ConfigObject]] = {}
        for o in self.objects:
            self.by_kind.setdefault(o.kind, []).append(o)

    def of_kind(self, kind: str) -> list[ConfigObject]:
        return self.by_kind.get(kind, [])

    def find(self, kind: str, namespace: str | None, name: str) -> ConfigObject | None:
        return next((o for o in self.of_kind(kind) if o.namespace == namespace and o.name == name), None)

    # --- DestinationRule -------------------------------------------------------------------
    def destination_rule(self, host: str, client_namespace: str, service_namespace: str,
                         client_labels: dict[str, str] | None = None) -> ConfigObject | None:
        """The DestinationRule a client (namespace, and its labels when known) takes for `host`. A rule with a
        workloadSelector counts only for the workloads it selects in its own namespace, ahead of one without."""
        for ns, private in rule_search(client_namespace, service_namespace, self.root_namespace):
            best: tuple[int, ConfigObject] | None = None
            for dr in self.of_kind("DestinationRule"):
                if dr.namespace != ns or not visible(dr, client_namespace) or (private and not private_only(dr)):
                    continue
                picked = selects(dr, client_namespace, client_labels)
                if picked is False:
                    continue
                h = dr.spec.get("host")
                if not isinstance(h, str):
                    continue
                pattern = fqdn(h, dr.namespace) if not h.startswith("*") else h
                if host_matches(pattern, host):
                    score = 2 * (len(pattern) + (1000 if pattern == host else 0)) + (1 if picked else 0)
                    if best is None or score > best[0]:
                        best = (score, dr)
            if best:
                return best[1]
        return None

    # --- PeerAuthentication ----------------------------------------------------------------
    def mtls_mode(self, workload: Workload, port: int | None = None) -> str:
        """The effective inbound mTLS mode of `workload` (on container `port`)."""
        mode = "PERMISSIVE"
        mesh = [p for p in self.of_kind("PeerAuthentication") if p.namespace == self.root_namespace and not _selector(p)]
        ns = [p for p in self.of_kind("PeerAuthentication") if p.namespace == workload.namespace and not _selector(p)]
        wl = [p for p in self.of_kind("PeerAuthentication") if p.namespace == workload.namespace and _selector(p)
              and all(workload.labels.get(k) == v for k, v in _selector(p).items())]
        for group in (mesh, ns, wl):
            for pa in sorted(group, key=lambda p: p.name)[:1]:
                m = ((pa.spec.get("mtls") or {}).get("mode") or "UNSET").upper()
                if m in MTLS_MODES:
                    mode = m
                if group is wl and port is not None:
                    plm = pa.spec.get("portLevelMtls") or {}
                    pm = plm.get(port) or plm.get(str(port))
                    if isinstance(pm, dict) and str(pm.get("mode", "")).upper() in MTLS_MODES:
                        mode = str(pm["mode"]).upper()
        return mode

    # --- AuthorizationPolicy ---------------------------------------------------------------
    def authorization_policies(self, workload: Workload) -> list[ConfigObject]:
        out = []
        for ap in self.of_kind("AuthorizationPolicy"):
            if ap.namespace not in (workload.namespace, self.root_namespace):
                continue
            sel = _selector(ap)
            if sel and not all(workload.labels.get(k) == v for k, v in sel.items()):
                continue
            out.append(ap)
        return sorted(out, key=lambda a: (a.namespace or "", a.name))

    # --- VirtualService --------------------------------------------------------------------
    def virtual_services(self, host: str, gateway: str | None = None, client_namespace: str | None = None) -> list[ConfigObject]:
        """VirtualServices for `host` bound to the mesh (gateway None) or to `gateway` (ns/name),
        among those exported to `client_namespace` (exportTo) when one is given."""
        out = []
        for vs in self.of_kind("VirtualService"):
            if client_namespace is not None and not visible(vs, client_namespace):
                continue
            gws = vs.spec.get("gateways") or ["mesh"]
            gws = [g if ("/" in g or g == "mesh") else f"{vs.namespace}/{g}" for g in gws if isinstance(g, str)]
            if (gateway is None and "mesh" not in gws) or (gateway is not None and gateway not in gws):
                continue
            for h in vs.spec.get("hosts") or []:
                if isinstance(h, str) and host_matches(fqdn(h, vs.namespace) if not h.startswith("*") else h, host):
                    out.append(vs)
                    break
        return sorted(out, key=lambda v: (v.namespace or "", v.name))


def _selector(obj: ConfigObject) -> dict[str, str]:
    sel = obj.spec.get("selector") or {}
    return dict(sel.get("matchLabels") or {}) if isinstance(sel, dict) else {}


def traffic_policy(dr: ConfigObject | None, port: int, subset: str | None = None) -> dict[str, Any]:
    """The effective trafficPolicy for one cluster (port, subset) of a DestinationRule: Istio's merge, as
    `mesh.config.traffic_policy` walks it (port level replaces, a subset overrides section by section)."""
    if dr is None:
        return {}
    return copy.deepcopy(effective_policy(dr.spec, port, subset))


def subsets(dr: ConfigObject | None) -> list[tuple[str, dict[str, str]]]:
    if dr is None:
        return []
    return [(s["name"], dict(s.get("labels") or {})) for s in dr.spec.get("subsets") or []
            if isinstance(s, dict) and isinstance(s.get("name"), str)]


def service_accounts(workloads: Iterable[Workload]) -> list[str]:
    return sorted({f"{w.namespace}/{w.service_account}" for w in workloads})
