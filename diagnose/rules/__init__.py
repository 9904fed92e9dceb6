"""Every config rule, in one explicit list (alphabetical by family, then name).

Searching this file shows every rule `meshscope analyze` runs; nothing is
registered at import time. Each entry is an instance with `metadata` and
`analyze(ctx)` (see `diagnose.rule`).
"""
from diagnose.rule import Rule
from diagnose.rules.config import asm
from diagnose.rules.config import (authorization, authorization_refs, destinationrule_tls, gateway_tls,
                                   peerauthentication, workload_mtls)
from diagnose.rules.config import (common, destinationrule, envoyfilter, gateway, gatewayapi, schema, service,
                                   serviceentry, sidecar, virtualservice, virtualservice_delegate,
                                   virtualservice_gateways, virtualservice_matches)

ALL_RULES: list[Rule] = [
    *asm.ALL,
    authorization.JWT_WITHOUT_AUTHN,
    authorization.NEEDS_MTLS,
    authorization.NO_MATCHING_WORKLOADS,
    authorization_refs.HOSTS,
    authorization_refs.METHODS,
    authorization_refs.NAMESPACE_NOT_FOUND,
    authorization_refs.PRINCIPALS,
    common.DeprecatedFields(),
    common.ExportToNamespaces(),
    common.IneffectiveGatewaySelectors(),
    common.NegativeConditions(),
    destinationrule.Duplicates(),
    destinationrule.SubsetSelectsPods(),
    destinationrule.Subsets(),
    destinationrule_tls.CA_CERTIFICATES,
    destinationrule_tls.DISABLED_UNDER_STRICT,
    destinationrule_tls.HOST_DROPS_MTLS,
    destinationrule_tls.MESH_WITHOUT_PA,
    destinationrule_tls.NAMESPACE_WITHOUT_PA,
    envoyfilter.Patches(),
    gateway.Conflicts(),
    gateway.IngressPorts(),
    gateway.Selector(),
    gatewayapi.References(),
    gateway_tls.CREDENTIALS,
    gateway_tls.DUPLICATE_CERTIFICATES,
    gateway_tls.TLS_WITHOUT_CREDENTIALS,
    peerauthentication.MESH_DISABLED_DR,
    peerauthentication.MESH_STRICT_DR,
    peerauthentication.NAMESPACE_DISABLED_DR,
    peerauthentication.NAMESPACE_STRICT_DR,
    *peerauthentication.NOTHING,
    *peerauthentication.OVERLAPS,
    peerauthentication.PORT_LEVEL_SELECTOR,
    peerauthentication.PORT_LEVEL_UNKNOWN_PORT,
    *peerauthentication.SELECTORLESS,
    peerauthentication.STRICT_WORKLOAD_CLIENTS,
    *schema.ALL,
    service.MultipleServices(),
    service.PortNames(),
    service.TargetPorts(),
    serviceentry.Addresses(),
    serviceentry.Conflicts(),
    serviceentry.Validity(),
    sidecar.EgressHosts(),
    sidecar.OutboundPolicyMode(),
    sidecar.RootDefault(),
    sidecar.Selectors(),
    virtualservice.ConflictingMeshGatewayHosts(),
    virtualservice.DestinationHosts(),
    virtualservice.DestinationRules(),
    virtualservice.RouteWeights(),
    virtualservice_delegate.Delegation(),
    virtualservice_gateways.Gateways(),
    virtualservice_gateways.IngressSubsetRouting(),
    virtualservice_gateways.JwtClaimRoutes(),
    virtualservice_matches.UnreachableRules(),
    workload_mtls.CLIENT_SERVER_MISMATCH,
    workload_mtls.WITHOUT_SIDECAR,
]


def by_name(*names: str) -> list[Rule]:
    """The rules with these names (unknown names raise KeyError)."""
    index = {r.metadata.name: r for r in ALL_RULES}
    return [index[n] for n in names]


__all__ = ["ALL_RULES", "Rule", "by_name"]
