"""The Bookinfo-shaped demo: config, apps and traffic generator."""
from mesh.demo.config import BOOKINFO, demo_objects
from mesh.demo.traffic import TrafficGenerator

__all__ = ["BOOKINFO", "TrafficGenerator", "demo_objects"]
