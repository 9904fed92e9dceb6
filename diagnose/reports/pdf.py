"""PDF with WeasyPrint from the print layout of the same report context as the HTML (`print_html`).

The URL fetcher refuses everything: the HTML is self-contained, and a report
must never reach out to the network while it renders (a rogue `url(...)` in a
service name would otherwise be fetched).
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from diagnose.reports.print_html import render_print_html
from diagnose.reports.snapshot import Snapshot


def _no_fetch(url: str, *args, **kwargs):
    raise ValueError(f"reports render offline; refusing to fetch {url}")


_local = threading.local()


def _fonts() -> Any:
    """One font configuration per thread, reused by every report the thread renders (a few ms each
    here); per thread because a Pango font map must not be shared between threads."""
    fonts = getattr(_local, "fonts", None)
    if fonts is None:
        from weasyprint.text.fonts import FontConfiguration

        fonts = _local.fonts = FontConfiguration()
    return fonts


def render_pdf(snapshot: Snapshot) -> bytes:
    import weasyprint

    logging.getLogger("weasyprint").setLevel(logging.ERROR)  # it warns about CSS it ignores
    html = weasyprint.HTML(string=render_print_html(snapshot), url_fetcher=_no_fetch, base_url=None)
    return html.write_pdf(font_config=_fonts())
