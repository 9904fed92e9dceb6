"""EnvoyFilter patches whose operation does nothing where it is applied, or applies in an undefined order.

Relative operations (INSERT_BEFORE/AFTER, REPLACE, REMOVE) depend on what other
EnvoyFilters did first; without `priority` that order is not defined, and a
proxyVersion-scoped patch of the same filter makes upgrades reorder them.
ADD/REMOVE on route configurations and REPLACE outside filters and virtual hosts
are silently ignored by istiod. Each problem is reported at the patch it is about, as
istioctl does on files (its messages carry the patch's line).
"""
from __future__ import annotations

from diagnose.context import Context
from diagnose.rule import Metadata
from diagnose.rules.config.util import as_dict, as_list, as_str

EF = "EnvoyFilter"
ROUTE_TARGETS = frozenset({"ROUTE_CONFIGURATION", "HTTP_ROUTE"})
REPLACEABLE = frozenset({"HTTP_FILTER", "NETWORK_FILTER", "VIRTUAL_HOST"})


def _filter_name(patch: dict, match: dict) -> tuple[str, str] | None:
    """Which filter a patch is about: its value's name, else the listener filter it matches."""
    value = as_dict(as_dict(patch).get("value"))
    if not value:
        return None
    if "name" in value:
        return ("value", str(value.get("name")))
    chain = as_dict(as_dict(as_dict(match).get("listener")).get("filterChain"))
    name = as_str(as_dict(chain.get("filter")).get("name"))
    return ("listener", name) if name else None


class Patches:
    """Each configPatch's operation against its applyTo, and relative operations without priority."""

    metadata = Metadata(
        name="envoyfilter.Patches",
        description="EnvoyFilter operations that are ignored where applied, or relative without a priority",
        inputs=(EF,),
        codes=("MS0030", "MS0031", "MS0032", "MS0033", "MS0034"),
    )

    def analyze(self, ctx: Context) -> None:
        versioned: set[tuple[str, str] | None] = set()  # filters some patch scopes to a proxyVersion
        filters = sorted(ctx.snapshot.of_kind(EF), key=lambda o: (o.namespace or "", o.name))
        for ef in filters:
            ctx.current = ef
            priority = ef.spec.get("priority")
            for i, cp in enumerate(as_list(ef.spec.get("configPatches"))):
                cp = as_dict(cp)
                patch, match = as_dict(cp.get("patch")), as_dict(cp.get("match"))
                op, apply_to = as_str(patch.get("operation")), as_str(cp.get("applyTo"))
                name = _filter_name(patch, match)
                path = f"spec/configPatches[{i}]"
                relative = False
                if op == "ADD" and apply_to in ROUTE_TARGETS:
                    ctx.report("MS0033", ef, path, index=i, apply_to=apply_to)
                elif op == "REMOVE":
                    if apply_to in ROUTE_TARGETS:
                        ctx.report("MS0034", ef, path, index=i, apply_to=apply_to)
                    else:
                        relative = True
                elif op == "REPLACE":
                    if apply_to not in REPLACEABLE:
                        ctx.report("MS0032", ef, path, index=i, apply_to=apply_to or "(none)")
                    else:
                        relative = True
                elif op in ("INSERT_BEFORE", "INSERT_AFTER"):
                    relative = True
                if relative and not priority:
                    if name is not None and name in versioned:
                        ctx.report("MS0031", ef, path, index=i, operation=op, filter=name[1])
                    else:
                        ctx.report("MS0030", ef, path, index=i, operation=op)
                if as_dict(match.get("proxy")).get("proxyVersion"):
                    versioned.add(name)
        ctx.current = None
