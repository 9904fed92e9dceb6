"""GET /api/v1/changes?since=&until=&namespace=&kind=&name=&limit=: the config journal, newest first.

`since`/`until` are epoch seconds; a negative `since` is relative to now
(`since=-3600`: the last hour). Gap markers in the window are always listed:
they say the journal may have missed changes to any object.
"""
from __future__ import annotations

from flask import Flask

from dashboard.api.common import PREFIX, api_route, arg_float, arg_int, arg_text, check_known
from dashboard.query import DataSource, QueryError, Unavailable

PARAMS = {"since", "until", "namespace", "kind", "name", "limit"}


def query(source: DataSource) -> list[dict]:
    """The validated request as a journal query (shared with the Changes page's API use)."""
    check_known(PARAMS)
    now = source.now()
    since = arg_float("since", None, minimum=-1e10)
    if since is not None and since < 0:
        since = now + since
    until = arg_float("until", None)
    if since is not None and until is not None and until < since:
        raise QueryError("until", "must not be before since")
    changes = getattr(source, "changes", None)
    if changes is None:
        raise Unavailable("this source keeps no config journal")
    return changes(since=since, until=until, namespace=arg_text("namespace"), kind=arg_text("kind"),
                   name=arg_text("name"), limit=arg_int("limit", 1000, 1, 10000))


def register(server: Flask, source: DataSource) -> None:
    @server.route(f"{PREFIX}/changes")
    @api_route
    def api_changes():  # noqa: ANN202
        return query(source)
