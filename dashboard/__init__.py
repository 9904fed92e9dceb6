"""The Dash web UI and the JSON API."""
from dashboard.access import AccessError
from dashboard.app import create_app
from dashboard.query import DataSource, GraphResult, QueryError, TraceFilters, Unavailable
from dashboard.server import RunningUI, serve, start
from dashboard.snapshot_source import SnapshotError, SnapshotSource, load_snapshot

__all__ = ["AccessError", "DataSource", "GraphResult", "QueryError", "RunningUI", "SnapshotError", "SnapshotSource",
           "TraceFilters", "Unavailable", "create_app", "load_snapshot", "serve", "start"]
