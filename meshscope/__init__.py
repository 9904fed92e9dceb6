"""meshscope's composition root: the `meshscope` command wires mesh, collector, topology, diagnose and dashboard."""

__all__ = ["__version__"]
__version__ = "0.1.0"
