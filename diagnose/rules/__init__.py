"""Every config rule, in one explicit list (alphabetical by family, then name).

Searching this file shows every rule `meshscope analyze` runs; nothing is
registered at import time.
"""
from diagnose.rule import Rule
from diagnose.rules.config import authorization, destinationrule_tls, gateway_tls, peerauthentication

ALL_RULES: list[Rule] = [
    authorization.METHODS,
    authorization.NAMESPACE_NOT_FOUND,
    authorization.NEEDS_MTLS,
    authorization.NO_MATCHING_WORKLOADS,
    authorization.PRINCIPALS,
    destinationrule_tls.CA_CERTIFICATES,
    destinationrule_tls.CLIENT_SERVER_MISMATCH,
    destinationrule_tls.DISABLED_UNDER_STRICT,
    destinationrule_tls.HOST_DROPS_MTLS,
    destinationrule_tls.MESH_WITHOUT_PA,
    destinationrule_tls.NAMESPACE_WITHOUT_PA,
    gateway_tls.CREDENTIALS,
    gateway_tls.DUPLICATE_CERTIFICATES,
    gateway_tls.TLS_WITHOUT_CREDENTIALS,
    peerauthentication.MESH_DISABLED_DR,
    peerauthentication.MESH_STRICT_DR,
    peerauthentication.NAMESPACE_DISABLED_DR,
    peerauthentication.NAMESPACE_STRICT_DR,
    peerauthentication.PORT_LEVEL_SELECTOR,
    peerauthentication.STRICT_WORKLOAD_CLIENTS,
    *peerauthentication.NOTHING,
    *peerauthentication.OVERLAPS,
    *peerauthentication.SELECTORLESS,
]


def by_name(*names: str) -> list[Rule]:
    """The rules with these names (unknown names raise KeyError)."""
    index = {r.metadata.name: r for r in ALL_RULES}
    return [index[n] for n in names]


__all__ = ["ALL_RULES", "Rule", "by_name"]
