"""One entry point for every format: what the CLI and `GET /api/v1/report?format=...` call."""
from __future__ import annotations

from diagnose.reports.snapshot import Snapshot

FORMATS = ("html", "md", "json", "pdf")
CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "json": "application/json",
    "pdf": "application/pdf",
}
EXTENSIONS = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".json": "json", ".pdf": "pdf"}


def render(snapshot: Snapshot, fmt: str) -> bytes:
    """Render `snapshot` as `fmt` (html, md, json or pdf) -> the file's bytes."""
    if fmt == "html":
        from diagnose.reports.html import render_html
        return render_html(snapshot).encode("utf-8")
    if fmt == "md":
        from diagnose.reports.markdown import render_markdown
        return render_markdown(snapshot).encode("utf-8")
    if fmt == "json":
        from diagnose.reports.json import render_json
        return render_json(snapshot).encode("utf-8")
    if fmt == "pdf":
        from diagnose.reports.pdf import render_pdf
        return render_pdf(snapshot)
    raise ValueError(f"unknown report format {fmt!r} (one of {', '.join(FORMATS)})")
