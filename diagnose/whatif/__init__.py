"""What-if: replay a window of observed edges against live config and live config + proposed objects.

The decisions come from the bundled control plane's own semantics (mesh.controlplane:
PeerAuthentication resolution, AuthorizationPolicy -> Envoy RBAC, DestinationRule subsets,
VirtualService lookup), evaluated over the window's edges as column operations.
"""
from diagnose.whatif.replay import EdgeImpact, ImpactReport, edges_of, overlay, predict

__all__ = ["EdgeImpact", "ImpactReport", "edges_of", "overlay", "predict"]
