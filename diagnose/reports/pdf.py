"""PDF from the same HTML with WeasyPrint, so PDF and HTML show the same content.

The URL fetcher refuses everything: the HTML is self-contained, and a report
must never reach out to the network while it renders (a rogue `url(...)` in a
service name would otherwise be fetched).
"""
from __future__ import annotations

from diagnose.reports.html import render_html
from diagnose.reports.snapshot import Snapshot


def _no_fetch(url: str, *args, **kwargs):
    raise ValueError(f"reports render offline; refusing to fetch {url}")


def render_pdf(snapshot: Snapshot) -> bytes:
    import logging

    import weasyprint

    logging.getLogger("weasyprint").setLevel(logging.ERROR)  # it warns about CSS it ignores (e.g. overflow-x)
    return weasyprint.HTML(string=render_html(snapshot), url_fetcher=_no_fetch, base_url=None).write_pdf()
