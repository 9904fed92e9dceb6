"""GET /api/v1/report?format=json|md|html|pdf: a report download, in the formats the source offers."""
from __future__ import annotations

from flask import Flask, Response

from dashboard.api.common import PREFIX, api_route, arg_choice, check_known
from dashboard.query import DataSource

_EXT = {"json": "json", "md": "md", "html": "html", "pdf": "pdf"}


def register(server: Flask, source: DataSource) -> None:
    @server.route(f"{PREFIX}/report")
    @api_route
    def api_report():  # noqa: ANN202
        check_known({"format"})
        fmt = arg_choice("format", tuple(_EXT), "html")
        body, content_type = source.report(fmt)
        name = f"meshscope-report.{_EXT.get(fmt, 'txt')}"
        return Response(body, mimetype=content_type.split(";")[0], content_type=content_type,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
