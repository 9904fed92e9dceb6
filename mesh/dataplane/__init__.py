"""The bundled mesh's data plane: Envoy processes and the supervisor that keeps them running."""
from mesh.dataplane.envoy import envoy_binary, envoy_spec
from mesh.dataplane.process import ProcessSpec
from mesh.dataplane.supervisor import Supervisor

__all__ = ["ProcessSpec", "Supervisor", "envoy_binary", "envoy_spec"]
