"""The bundled mesh's control plane: registry, CA, Istio -> Envoy translation, REST xDS."""
from mesh.controlplane.ca import IssuedCert, MeshCA, spiffe_id
from mesh.controlplane.context import ConfigError
from mesh.controlplane.registry import Registry, Service, ServicePort, Workload
from mesh.controlplane.translate import ProxyResources, translate
from mesh.controlplane.xds_rest import XdsServer

__all__ = ["ConfigError", "IssuedCert", "MeshCA", "ProxyResources", "Registry", "Service", "ServicePort", "Workload",
           "XdsServer", "spiffe_id", "translate"]
