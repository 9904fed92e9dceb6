"""JSON API under /api/v1, one module per resource."""
from dashboard.api.routes import register_api

__all__ = ["register_api"]
