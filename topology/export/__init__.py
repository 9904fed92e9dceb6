"""Wire formats for the graph: Cytoscape JSON for the UI and Kiali-shaped JSON."""
from topology.export.cytoscape import to_cytoscape
from topology.export.kiali import format_rate, to_kiali

__all__ = ["format_rate", "to_cytoscape", "to_kiali"]
