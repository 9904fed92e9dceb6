"""The checks Istio's validation webhook makes that its CRD schema cannot express, one module per family.

Read from istio/istio pkg/config/validation (validation.go, virtualservice.go,
envoyfilter/, agent/validation.go): each function is one of those checks, over the
plain spec dict, reporting `Issue`s with YAML paths. They run after the schema checks
and tolerate wrong types (the schema layer reports those), so they only look at
values of the right type.
"""
from __future__ import annotations

from mesh.config.schema.webhook import envoyfilter, gateway, security, services, sidecar, virtualservice
from mesh.config.schema.webhook.common import SemanticCheck

#: Semantic checks by kind (kinds without extra checks rely on their schema alone).
CHECKS: dict[str, list[SemanticCheck]] = {
    "VirtualService": [virtualservice.virtual_service],
    "Gateway": [gateway.gateway],
    "DestinationRule": [services.destination_rule],
    "ServiceEntry": [services.service_entry],
    "Sidecar": [sidecar.sidecar],
    "AuthorizationPolicy": [security.authorization_policy],
    "RequestAuthentication": [security.request_authentication],
    "PeerAuthentication": [security.peer_authentication],
    "WorkloadGroup": [services.workload_group],
    "WorkloadEntry": [services.workload_entry],
    "EnvoyFilter": [envoyfilter.envoy_filter],
}
