"""GET /api/v1/incidents?status=&severity=&namespace= and /api/v1/incidents/<id>: findings grouped by cause.

The findings API stays as it is; an incident is a view over the same findings
(`diagnose.incidents`): the root cause first, then the config findings that
predicted it and its symptoms, with the total impact. `status` defaults to open.
"""
from __future__ import annotations

from flask import Flask, request

from dashboard.api.common import PREFIX, api_route, check_known, error
from dashboard.query import DataSource, QueryError
from diagnose.incidents import incidents_of_dicts

STATUSES = ("open", "resolved", "all")


def _incidents(source: DataSource, full: bool = False) -> list[dict]:
    status = request.args.get("status") or "open"
    if status not in STATUSES:
        raise QueryError("status", f"unknown status {status!r} (known: {', '.join(STATUSES)})")
    filters = {k: request.args[k] for k in ("namespace",) if request.args.get(k)}
    if status != "all":
        filters["status"] = status
    out = incidents_of_dicts(source.findings(filters), full=full)
    severity = request.args.get("severity")
    if severity:
        out = [i for i in out if i["severity"] in severity.split(",")]
    return out


def register(server: Flask, source: DataSource) -> None:
    @server.route(f"{PREFIX}/incidents")
    @api_route
    def api_incidents():  # noqa: ANN202
        check_known({"status", "severity", "namespace"})
        return _incidents(source)

    @server.route(f"{PREFIX}/incidents/<incident_id>")
    @api_route
    def api_incident(incident_id: str):  # noqa: ANN202
        check_known({"status"})
        found = next((i for i in _incidents(source, full=True) if i["id"] == incident_id), None)
        return found if found is not None else error(404, f"no incident with id {incident_id!r}")
