"""Every config rule, in one explicit list (alphabetical by family, then name).

Searching this file shows every rule `meshscope analyze` runs; nothing is
registered at import time. Each entry is an instance with `metadata` and
`analyze(ctx)` (see `diagnose.rule`).
"""
from diagnose.rule import Rule
from diagnose.rules.config import (common, destinationrule, gateway, service, serviceentry, sidecar, virtualservice,
                                   virtualservice_matches)

ALL_RULES: list[Rule] = [
    common.DeprecatedFields(),
    common.ExportToNamespaces(),
    destinationrule.Duplicates(),
    destinationrule.SubsetSelectsPods(),
    destinationrule.Subsets(),
    gateway.Conflicts(),
    gateway.IngressPorts(),
    gateway.Selector(),
    service.MultipleServices(),
    service.PortNames(),
    serviceentry.Addresses(),
    serviceentry.Conflicts(),
    serviceentry.Validity(),
    sidecar.EgressHosts(),
    sidecar.RootDefault(),
    sidecar.Selectors(),
    virtualservice.ConflictingMeshGatewayHosts(),
    virtualservice.DestinationHosts(),
    virtualservice.DestinationRules(),
    virtualservice.Gateways(),
    virtualservice.IngressSubsetRouting(),
    virtualservice.RouteWeights(),
    virtualservice_matches.UnreachableRules(),
]


def by_name(*names: str) -> list[Rule]:
    """The rules with these names (unknown names raise KeyError)."""
    index = {r.metadata.name: r for r in ALL_RULES}
    return [index[n] for n in names]


__all__ = ["ALL_RULES", "Rule", "by_name"]
