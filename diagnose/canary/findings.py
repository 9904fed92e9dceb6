"""Canary verdicts as findings: a regressing canary names the VirtualService whose weights to change,
with the YAML that sends everything back to the stable version."""
from __future__ import annotations

import copy
from typing import Any

import yaml

from diagnose.canary.verdict import INSUFFICIENT, PROMOTE, ROLLBACK, Verdict
from diagnose.catalog import make
from diagnose.findings import Finding, ResourceRef
from mesh.config.model import ConfigObject
from mesh.controlplane.policy import ConfigIndex, subsets
from mesh.controlplane.registry import fqdn

_CODES = {ROLLBACK: "MS5010", PROMOTE: "MS5011", INSUFFICIENT: "MS5012"}


def _weighted_route(index: ConfigIndex, host: str) -> tuple[ConfigObject, int] | None:
    for vs in index.virtual_services(host):
        for i, r in enumerate(vs.spec.get("http") or []):
            if isinstance(r, dict) and len(r.get("route") or []) > 1:
                return vs, i
    return None


def weighted_hosts(objects: list[ConfigObject], root_namespace: str = "istio-system") -> set[str]:
    """Hosts (FQDN) some mesh VirtualService splits by weight over several destinations: running canaries."""
    out: set[str] = set()
    for vs in ConfigIndex(objects, root_namespace).of_kind("VirtualService"):
        for r in vs.spec.get("http") or []:
            routes = [d for d in (r.get("route") or []) if isinstance(d, dict)] if isinstance(r, dict) else []
            if sum(1 for d in routes if (d.get("weight") or 0) > 0) < 2:
                continue
            for d in routes:
                host = (d.get("destination") or {}).get("host")
                if isinstance(host, str):
                    out.add(fqdn(host, vs.namespace or "default"))
    return out


# the pod labels Istio reads a workload's version from (destination_version), in its order
VERSION_LABELS = ("version", "app.kubernetes.io/version", "service.istio.io/canonical-revision")


def stable_subset(objects: list[ConfigObject], dr: ConfigObject | None, version: str, routed: list[str]) -> str | None:
    """The DestinationRule subset that selects the stable version's pods: by a version label in the subset, else
    by the pods themselves (a subset keyed `track: stable` selects the Deployments whose version label is the
    stable one). Among several, one the route names. None when no subset selects them."""
    named = subsets(dr)
    hit = [n for n, labels in named if any(labels.get(k) == version for k in VERSION_LABELS)]
    if not hit and dr is not None:
        from mesh.controlplane.registry import workloads_from
        pods = [w.labels for w in workloads_from(objects) if w.namespace == dr.namespace
                and next((w.labels[k] for k in VERSION_LABELS if k in w.labels), None) == version]
        hit = [n for n, labels in named if labels and any(all(p.get(k) == v for k, v in labels.items()) for p in pods)]
    return next((n for n in hit if n in routed), hit[0] if hit else None)


def rollback_yaml(vs: ConfigObject, route: int, stable_subset: str | None) -> str | None:
    """The VirtualService with route `route` sending 100 % to the stable subset (others at weight 0); None when
    the route names no such subset: weights all 0 (or 100 on a subset-less destination that is not the stable
    version) would be a "rollback" that breaks the host."""
    raw = copy.deepcopy(vs.raw) if vs.raw else {"apiVersion": vs.api_version, "kind": vs.kind,
                                                 "metadata": {"name": vs.name, "namespace": vs.namespace},
                                                 "spec": copy.deepcopy(vs.spec)}
    dests = raw["spec"]["http"][route]["route"]
    if stable_subset is None or not any((d.get("destination") or {}).get("subset") == stable_subset for d in dests):
        return None
    for d in dests:
        d["weight"] = 100 if (d.get("destination") or {}).get("subset") == stable_subset else 0
    return yaml.safe_dump(raw, sort_keys=False)


def pin_yaml(host: str, stable: str) -> str:
    """A DestinationRule subset for the stable version and a VirtualService sending it all the traffic: the
    rollback where versions share a Service with no weighted route (scaling the candidate to zero also does)."""
    name, _, rest = host.partition(".")
    ns = rest.split(".", 1)[0] or "default"
    subset = f"stable-{stable}"
    dr = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": name, "namespace": ns},
          "spec": {"host": host, "subsets": [{"name": subset, "labels": {"version": stable}}]}}
    vs = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": name, "namespace": ns},
          "spec": {"hosts": [host], "http": [{"route": [{"destination": {"host": host, "subset": subset}, "weight": 100}]}]}}
    return yaml.safe_dump_all([dr, vs], sort_keys=False)


def findings_of(verdicts: list[Verdict], objects: list[ConfigObject], root_namespace: str = "istio-system") -> list[Finding]:
    index = ConfigIndex(objects, root_namespace)
    out = []
    for v in verdicts:
        if v.verdict not in _CODES:
            continue
        ref, ev = None, {"edge_key": f"{v.service}:{v.candidate}", "verdict": v.to_dict()}
        found = _weighted_route(index, v.service)
        if found is not None:
            vs, i = found
            ref = ResourceRef(vs.kind, vs.name, vs.namespace, f"spec/http[{i}]/route",
                              f"{vs.source.file}:{vs.lines.get(f'spec/http[{i}]/route', vs.source.line)}" if vs.source else None)
            ev["weights"] = {str((d.get("destination") or {}).get("subset") or d.get("destination", {}).get("host")):
                             d.get("weight", 0) for d in vs.spec["http"][i]["route"]}
            if v.verdict == ROLLBACK:
                dr = index.destination_rule(v.service, vs.namespace or "default", v.namespace)
                routed = [str((d.get("destination") or {}).get("subset")) for d in vs.spec["http"][i]["route"]]
                got = rollback_yaml(vs, i, stable_subset(objects, dr, v.stable, routed))
                if got is not None:
                    ev["rollback_yaml"] = got
                else:
                    ev["rollback_note"] = (f"no rollback YAML: no subset this route names selects {v.stable}'s pods "
                                           f"(DestinationRule {dr.namespace}/{dr.name if dr else ''} subsets "
                                           f"{[n for n, _ in subsets(dr)]}); send its weight to {v.stable} by hand"
                                           if dr is not None else f"no rollback YAML: no DestinationRule defines a "
                                           f"subset for {v.stable}; send the route's weight to {v.stable} by hand")
        elif v.verdict == ROLLBACK:  # versions side by side with no weighted route: pin the stable one
            ev["rollback_yaml"] = pin_yaml(v.service, v.stable)
        out.append(make(_CODES[v.verdict], ref, evidence=ev, impact={"requests": v.evidence.get("requests")},
                        service=v.service, candidate=v.candidate, stable=v.stable,
                        confidence=f"{v.confidence:.1%}", reason=v.reason))
    return out
