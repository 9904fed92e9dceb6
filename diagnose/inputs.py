"""Findings about the input itself (MS0xxx): load problems, unknown kinds and versions, duplicates.

These look at every object regardless of kind, so they are not rules with
declared inputs; `diagnose.analyze` runs them before the rules.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable

from diagnose.catalog import make
from diagnose.context import resource_ref
from diagnose.findings import Finding, ResourceRef
from mesh.config import LoadProblem, Snapshot
from mesh.config.kinds import ANALYZED_KINDS, ISTIO_GROUPS, group_of, is_known
from mesh.config.schema import kinds as schema_kinds
from mesh.config.schema import served_versions

PROBLEM_CODES = {
    "unreadable": "MS0001",
    "not-yaml": "MS0002",
    "not-mapping": "MS0003",
    "no-kind": "MS0004",
    "no-name": "MS0005",
    "no-api-version": "MS0006",
    "bad-field": "MS0007",
    "over-limit": "MS0040",  # mesh.config.limits.OVER_LIMIT
    "unrendered-template": "MS0026",  # mesh.config.loader.UNRENDERED_TEMPLATE: one warning per file
    "not-an-object": "MS0024",  # mesh.config.loader.NOT_AN_OBJECT (LoadResult.skipped): info
    "unreadable-cluster-object": "MS0025",  # meshscope analyze --kubeconfig: list items mesh.kube skipped; info
}

#: API versions served per group (objects of other versions are flagged, not dropped).
SERVED_VERSIONS = {
    "networking.istio.io": ("v1alpha3", "v1beta1", "v1"),
    "security.istio.io": ("v1beta1", "v1"),
    "telemetry.istio.io": ("v1alpha1", "v1"),
    "extensions.istio.io": ("v1alpha1",),
    # v1alpha3: TLSRoute (experimental channel since Gateway API 1.4) and BackendTLSPolicy (1.2-1.4)
    "gateway.networking.k8s.io": ("v1alpha2", "v1alpha3", "v1beta1", "v1"),
}


def problem_findings(problems: Iterable[LoadProblem]) -> list[Finding]:
    out = []
    for p in problems:
        source = f"{p.file}:{p.line}" if p.line else p.file
        if p.kind and p.name:
            ref = ResourceRef(kind=p.kind, name=p.name, namespace=p.namespace,
                              path=p.field.replace(".", "/") if p.field else None, source=source)
        else:
            ref = ResourceRef(kind="File", name=p.file, path=p.field.replace(".", "/") if p.field else None,
                              source=source)
        out.append(make(PROBLEM_CODES.get(p.reason, "MS0007"), ref, reason=p.message))
    return out


def _istio_kinds(group: str) -> list[str]:
    return [k for k, g in ANALYZED_KINDS.items() if g == group]


def kind_findings(snapshot: Snapshot) -> list[Finding]:
    """Unknown kinds, misspelt Istio kinds, unserved API versions, objects defined twice.

    Every definition is checked, the ignored ones of a duplicate too: like a load problem,
    a wrong kind or version is a problem of the document (kubectl apply fails on it).
    """
    out: list[Finding] = []
    ignored = [o for dup in snapshot.duplicates for o in dup.ignored]
    for obj in [*snapshot.objects, *ignored]:
        group = group_of(obj.api_version)
        version = obj.api_version.rsplit("/", 1)[-1]
        if not is_known(obj.kind, obj.api_version):
            if group in ISTIO_GROUPS:
                close = difflib.get_close_matches(obj.kind, _istio_kinds(group), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                out.append(make("MS0009", resource_ref(obj, "kind"), api_version=obj.api_version, kind=obj.kind,
                                hint=hint))
            else:
                out.append(make("MS0008", resource_ref(obj, "kind"), api_version=obj.api_version or "no apiVersion",
                                kind=obj.kind))
            continue
        # per kind where Istio's CRDs say (EnvoyFilter is v1alpha3 only), else per group
        istio = served_versions(obj.kind) if group == schema_kinds().get(obj.kind) else ()
        served = tuple(v for v in SERVED_VERSIONS.get(group, istio) if v in istio) or SERVED_VERSIONS.get(group)
        if served and version not in served:
            out.append(make("MS0010", resource_ref(obj, "apiVersion"), api_version=obj.api_version, kind=obj.kind,
                            supported=", ".join(f"{group}/{v}" for v in served)))
    return out + duplicate_findings(snapshot)


def duplicate_findings(snapshot: Snapshot) -> list[Finding]:
    """One MS0011 per object defined more than once, on the definition that is analyzed (the last)."""
    out = []
    for dup in snapshot.duplicates:
        where = dup.locations
        out.append(make("MS0011", resource_ref(dup.evaluated), [resource_ref(o) for o in dup.ignored],
                        evidence={"definitions": where, "evaluated": where[-1]},
                        ref=dup.evaluated.ref, count=len(where), locations=", ".join(where), evaluated=where[-1]))
    return out
