"""plotly.js as the pages load it: the basic build (scatter, bar, pie), not the full 4.8 MB bundle.

Dash's Graph loads plotly.js on a page's first chart, from one URL under `_dash-component-suites/plotly/`, and
the browser parses and runs the whole file in one main-thread task: with the full bundle (49 trace types) that task
froze the tab for 3.7-7.3 s on a cold code cache here (issue #17's freeze is a task over 1 s). Every chart in
this dashboard is a scatter or a bar, so the server answers that URL with plotly's own basic build of the same
version (1.2 MB, vendor/sources.yaml), whatever page asks. `TRACES` is what it can draw: a figure with any other
trace type would draw nothing, so tests/dashboard/test_plotly_bundle.py checks every trace type the code names.
"""
from __future__ import annotations

import re
from pathlib import Path

import flask

BUNDLE = Path(__file__).parent / "vendor" / "plotly-basic.min.js"
TRACES = frozenset({"bar", "pie", "scatter"})
# Dash's URL for plotly.js: package_data/plotly.min.js, or with Dash's cache-busting fingerprint in the name
_PLOTLY_URL = re.compile(r"/_dash-component-suites/plotly/package_data/plotly(\.v[\w]+)?\.min\.js$")


def install_plotly_bundle(server: flask.Flask) -> None:
    """Serve BUNDLE wherever Dash would serve plotly.js (after the access checks, which run first)."""

    @server.before_request
    def basic_plotly():  # noqa: ANN202 - Flask hook
        if flask.request.method not in ("GET", "HEAD") or not _PLOTLY_URL.search(flask.request.path):
            return None
        return flask.send_file(BUNDLE, mimetype="application/javascript", conditional=True, max_age=3600)
