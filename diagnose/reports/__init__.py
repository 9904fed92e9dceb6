"""Diagnostic reports: one snapshot record, rendered as HTML, Markdown, JSON or PDF."""
from diagnose.reports.render import CONTENT_TYPES, EXTENSIONS, FORMATS, render
from diagnose.reports.build import build_snapshot, inventory_from_objects, summarize_graph
from diagnose.reports.snapshot import SCHEMA_VERSION, MeshSummary, Snapshot, SnapshotError, Window, load_snapshot, save_snapshot

__all__ = [
    "CONTENT_TYPES",
    "EXTENSIONS",
    "FORMATS",
    "MeshSummary",
    "SCHEMA_VERSION",
    "Snapshot",
    "SnapshotError",
    "Window",
    "build_snapshot",
    "inventory_from_objects",
    "load_snapshot",
    "render",
    "save_snapshot",
    "summarize_graph",
]
