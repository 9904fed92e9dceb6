"""What-if of a deletion: which live objects a request names, so the replay can judge the config without them.

"What breaks if I delete this DestinationRule?" is the same question as an edit: the live config with the
object's absence applied, every observed edge it governed re-judged. A deletion names objects the way
kubectl does (`Kind/namespace/name`, `kind.group/namespace/name`, `Kind/name` in the default namespace,
Istio's short names such as `dr`, `vs`, `pa`, `ap`), or by the objects of a file (`meshscope delete -f
--dry-run`). A name that matches nothing in the live config is refused with the name and what the
namespace does hold: predicting "nothing breaks" for a typo would read as a safe deletion.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from mesh.config.kinds import ANALYZED_KINDS, group_of, type_name
from mesh.config.model import ConfigObject

# kubectl's short names of Istio's kinds (and a few Kubernetes ones), lower case
SHORT = {"dr": "DestinationRule", "vs": "VirtualService", "gw": "Gateway", "se": "ServiceEntry",
         "we": "WorkloadEntry", "wg": "WorkloadGroup", "pa": "PeerAuthentication", "ap": "AuthorizationPolicy",
         "ra": "RequestAuthentication", "svc": "Service", "deploy": "Deployment", "sts": "StatefulSet",
         "ds": "DaemonSet", "po": "Pod", "ns": "Namespace", "sa": "ServiceAccount", "cm": "ConfigMap"}


@dataclass(frozen=True)
class Named:
    """An object a deletion names: its kind as written (maybe with a group), namespace and name."""

    kind: str
    namespace: str
    name: str
    group: str | None = None  # "networking.istio.io" when written kind.group

    def label(self) -> str:
        return f"{self.kind}{'.' + self.group if self.group else ''} {self.namespace}/{self.name}"


def parse(ref: Any, default_namespace: str = "default") -> Named:
    """`Kind/ns/name`, `Kind/name` or {kind, namespace, name}; ValueError naming what is wrong otherwise."""
    if isinstance(ref, dict):
        unknown = sorted(set(ref) - {"kind", "namespace", "name", "apiVersion"})
        if unknown:
            raise ValueError(f"{ref!r}: unknown field {unknown[0]!r} (known: kind, namespace, name, apiVersion)")
        kind, ns, name = ref.get("kind"), ref.get("namespace") or default_namespace, ref.get("name")
        if not all(isinstance(v, str) and v.strip() for v in (kind, ns, name)):
            raise ValueError(f"{ref!r}: kind, name (and namespace) must be non-empty strings")
        group = group_of(str(ref["apiVersion"])) if isinstance(ref.get("apiVersion"), str) else None
        return _named(kind.strip(), ns.strip(), name.strip(), group or None)
    if not isinstance(ref, str) or not ref.strip():
        raise ValueError(f"{ref!r}: name an object as Kind/namespace/name (e.g. DestinationRule/bookinfo/reviews)")
    parts = [p.strip() for p in ref.strip().split("/")]
    if len(parts) == 2:
        parts = [parts[0], default_namespace, parts[1]]
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"{ref!r}: name an object as Kind/namespace/name (e.g. DestinationRule/bookinfo/reviews)")
    kind, group = (parts[0].split(".", 1) + [None])[:2] if "." in parts[0] else (parts[0], None)
    return _named(kind, parts[1], parts[2], group)


def _named(kind: str, ns: str, name: str, group: str | None) -> Named:
    return Named(_canonical_kind(kind), ns, name, group)


def _canonical_kind(kind: str) -> str:
    """DestinationRule from destinationrule, destinationrules, dr; unknown kinds are kept as written."""
    low = kind.lower()
    if low in SHORT:
        return SHORT[low]
    known = {k.lower(): k for k in [*ANALYZED_KINDS, "Gateway", "ServiceLevelObjective"]}
    for cand in (low, low[:-1] if low.endswith("s") else low, low[:-2] if low.endswith("es") else low,
                 low[:-3] + "y" if low.endswith("ies") else low):
        if cand in known:
            return known[cand]
    return kind


def _kind_of(o: ConfigObject) -> str:
    return type_name(o.kind, o.api_version)


def resolve(live: list[ConfigObject], refs: list[Named]) -> tuple[list[ConfigObject], list[str]]:
    """The live objects the refs name (each once) and a problem per ref naming nothing, or several objects."""
    out: list[ConfigObject] = []
    problems: list[str] = []
    seen: set[int] = set()
    by_name: dict[tuple[str, str], list[ConfigObject]] = {}  # one pass over the live config, whatever the refs
    for o in live:
        by_name.setdefault((o.name, o.namespace or ""), []).append(o)
    for r in refs:
        hit = [o for o in by_name.get((r.name, r.namespace), ()) if (o.kind == r.kind or _kind_of(o) == r.kind)
               and (r.group is None or group_of(o.api_version) == r.group)]
        if len(hit) > 1:
            groups = sorted({f"{o.kind}.{group_of(o.api_version)}" for o in hit})
            problems.append(f"{r.label()}: names {len(hit)} live objects ({', '.join(groups)}): write the kind with "
                            "its API group, e.g. " + f"{groups[0]}/{r.namespace}/{r.name}")
            continue
        if not hit:
            problems.append(f"{r.label()}: not in the live config, nothing to delete ({_nearby(live, r)})")
            continue
        if id(hit[0]) not in seen:
            seen.add(id(hit[0]))
            out.append(hit[0])
    return out, problems


def _nearby(live: list[ConfigObject], r: Named) -> str:
    """What the live config holds close to a name that matched nothing: the kind's objects in the namespace."""
    kinds = sorted({o.kind for o in live} | {_kind_of(o) for o in live})
    if r.kind not in kinds:
        close = difflib.get_close_matches(r.kind, kinds, n=1, cutoff=0.6)
        return (f"no live object is of kind {r.kind}" + (f"; did you mean {close[0]}?" if close else ""))
    same = sorted(o.name for o in live if (o.kind == r.kind or _kind_of(o) == r.kind) and (o.namespace or "") == r.namespace)
    if not same:
        where = sorted({o.namespace or "" for o in live if o.kind == r.kind or _kind_of(o) == r.kind})
        return f"no {r.kind} in namespace {r.namespace}; there are some in {', '.join(where[:8])}"
    close = difflib.get_close_matches(r.name, same, n=1, cutoff=0.6)
    listed = ", ".join(same[:12]) + (f" and {len(same) - 12} more" if len(same) > 12 else "")
    return f"{r.kind}s in {r.namespace}: {listed}" + (f"; did you mean {close[0]}?" if close else "")


def label(o: ConfigObject) -> str:
    """How outputs name a deleted object: Kind namespace/name (file:line)."""
    src = f" ({o.source.file}:{getattr(o.source, 'line', 0) or 0})" if o.source is not None else ""
    return f"{o.kind} {o.namespace}/{o.name}{src}"
