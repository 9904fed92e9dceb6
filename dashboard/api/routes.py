"""Mount every /api/v1 resource module on the Dash app's Flask server."""
from __future__ import annotations

from flask import Flask

from dashboard.api.common import install_errors
from dashboard.api import canary, changes, config, dryrun, findings, graph, graph_diff, impact, incidents, ingest, report, scenarios, slos, traces
from dashboard.query import DataSource

MODULES = (graph, graph_diff, findings, incidents, slos, traces, config, report, scenarios, ingest, changes, impact, canary,
           dryrun)


def register_api(server: Flask, source: DataSource) -> None:
    for module in MODULES:
        module.register(server, source)
    install_errors(server)  # after the routes: JSON 404/405 under /api/v1
