"""VirtualService delegation: root routes whose delegate is never merged, delegates nobody uses.

A VirtualService without hosts is a delegate: istiod never programs it on its own, only merges
its HTTP routes into a root VirtualService's route that names it (`http[].delegate`; the
namespace defaults to the root's). istiod drops the root's route, logging only a warning, when
that VirtualService does not exist, has hosts (so it is no delegate), or is not exported to the
root's namespace; and it drops each delegate route whose matches do not fit inside the root
route's matches (`mergeHTTPMatchRequests` in pilot/pkg/model/virtualservice.go). Requests meant
for those routes fall through to later routes or get a 404 (NR). Nothing rejects any of it, so
these are the checks a user needs before applying.
"""
from __future__ import annotations

from typing import Any

from diagnose.context import Context
from diagnose.rule import Metadata
from diagnose.rules.config.util import as_dict, as_list, as_str
from mesh.config import ConfigObject
from mesh.config.hosts import visible

VS = "VirtualService"
#: The request attributes a root and a delegate match must agree on; sourceLabels, sourceNamespace
#: and gateways do not apply to delegates (Istio ignores them in the merge).
_STRING_FIELDS = ("uri", "scheme", "method", "authority")


def is_delegate(vs: ConfigObject) -> bool:
    """A VirtualService without hosts: only usable through another one's `http[].delegate`."""
    return not [h for h in as_list(vs.spec.get("hosts")) if h]


def delegate_ref(route: Any, root: ConfigObject) -> tuple[str | None, str] | None:
    """(namespace, name) a root HTTP route delegates to, the namespace defaulting to the root's."""
    ref = as_dict(as_dict(route).get("delegate"))
    name = as_str(ref.get("name"))
    if not name:
        return None
    return as_str(ref.get("namespace")) or root.namespace, name


def flagger_delegates(ctx: Context) -> set[tuple[str | None, str]]:
    """(namespace, name) of the delegate VirtualServices Flagger generates: a Canary with
    `service.delegation: true` writes one without hosts, named after its service (else its target)."""
    out = set()
    for canary in ctx.for_each("Canary"):
        if not canary.api_version.startswith("flagger.app/"):
            continue
        service = as_dict(canary.spec.get("service"))
        name = as_str(service.get("name")) or as_str(as_dict(canary.spec.get("targetRef")).get("name"))
        if service.get("delegation") is True and name:
            out.add((canary.namespace, name))
    return out


def _string_conflict(root: Any, leaf: Any) -> bool:
    """Whether a delegate's string match can accept a request the root's cannot (Istio's rule)."""
    if not isinstance(root, dict) or not isinstance(leaf, dict) or not root or not leaf:
        return False
    if as_str(root.get("regex")) or as_str(leaf.get("regex")):
        return True  # regexes cannot be compared, so Istio refuses them under delegation
    exact, prefix = as_str(root.get("exact")), as_str(root.get("prefix"))
    if exact:
        return bool(as_str(leaf.get("prefix"))) or as_str(leaf.get("exact")) != exact
    if prefix:
        inner = as_str(leaf.get("prefix")) or as_str(leaf.get("exact"))
        return not inner.startswith(prefix) if inner else True
    return True


def _match_conflict(root: dict[str, Any], leaf: dict[str, Any]) -> bool:
    if any(_string_conflict(root.get(f), leaf.get(f)) for f in _STRING_FIELDS):
        return True
    root_headers = as_dict(root.get("headers"))
    for field, pool in (("headers", root_headers), ("withoutHeaders", root_headers),
                        ("queryParams", as_dict(root.get("queryParams")))):
        if any(_string_conflict(pool.get(k), v) for k, v in as_dict(leaf.get(field)).items()):
            return True
    if bool(root.get("ignoreUriCase")) != bool(leaf.get("ignoreUriCase")):
        return True
    rp, lp = root.get("port"), leaf.get("port")
    return isinstance(rp, int) and isinstance(lp, int) and rp > 0 and lp > 0 and rp != lp


def route_fits(root_route: Any, delegate_route: Any) -> bool:
    """Whether istiod keeps a delegate route under a root route: each of its matches must fit in one of the root's."""
    roots = [as_dict(m) for m in as_list(as_dict(root_route).get("match"))]
    leaves = [as_dict(m) for m in as_list(as_dict(delegate_route).get("match"))]
    if not roots or not leaves:
        return True
    return all(any(not _match_conflict(r, leaf) for r in roots) for leaf in leaves)


class Delegation:
    """Root routes whose delegate istiod cannot merge, delegate routes it drops, delegates nobody uses."""

    metadata = Metadata(
        name="virtualservice.Delegation",
        description="VirtualService http[].delegate names a delegate (no hosts, exported to the root), "
                    "whose routes fit the root's matches; every delegate is used by a root",
        inputs=(VS, "Canary"),
        codes=("MS1020", "MS1021", "MS1022"),
    )

    def analyze(self, ctx: Context) -> None:
        used: set[tuple[str | None, str]] = set()
        generated = flagger_delegates(ctx)
        for root in ctx.for_each(VS):
            if is_delegate(root):
                continue  # a delegate's own `delegate` is refused by istiod's webhook (MS0023)
            for i, route in enumerate(as_list(root.spec.get("http"))):
                ref = delegate_ref(route, root)
                if ref is None:
                    continue
                used.add(ref)
                path = f"spec/http[{i}]/delegate"
                target = ctx.find(VS, ref[0], ref[1])
                label = f"{ref[0]}/{ref[1]}" if ref[0] else ref[1]
                if target is None and ref in generated:
                    continue  # Flagger writes it when the canary starts
                if target is None:
                    ctx.report("MS1020", root, path, target=label, reason="no such VirtualService exists")
                elif not is_delegate(target):
                    ctx.report("MS1020", root, path, related=[target], target=label,
                               reason="it has hosts, so it is an ordinary VirtualService and not a delegate "
                                      "(remove its hosts to make it one)")
                elif not visible(target, root.namespace):
                    ctx.report("MS1020", root, path, related=[target], target=label,
                               reason=f"its exportTo does not include the root's namespace {root.namespace}")
                else:
                    self._merge(ctx, root, i, route, target)
        for vs in ctx.for_each(VS):
            if is_delegate(vs) and (vs.namespace, vs.name) not in used and as_list(vs.spec.get("http")):
                ctx.report("MS1021", vs, "spec")

    @staticmethod
    def _merge(ctx: Context, root: ConfigObject, i: int, route: Any, target: ConfigObject) -> None:
        for j, sub in enumerate(as_list(target.spec.get("http"))):
            if not route_fits(route, sub):
                ctx.report("MS1022", target, f"spec/http[{j}]/match", related=[(root, f"spec/http[{i}]/match")],
                           rule=j, root=f"{root.namespace}/{root.name}" if root.namespace else root.name, index=i)
