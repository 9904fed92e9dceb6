"""Kiali graph conformance: every case of ../shared/conformance/kiali-graph through the builder.

Each case's issued Prometheus answers become one Istio rate frame (the
`reporter` label comes from the query selector, as Prometheus would return it
with `reporter` in the group-by); the builder applies Kiali's query selection
itself, and `to_kiali` must reproduce Kiali's golden JSON exactly.
Prints `conformance kiali-graph: N/M cases pass` at the end of the run.
"""
from __future__ import annotations

import difflib
import json
import re

import pandas as pd
import pytest

from tests.conformance.common import require_corpus
from topology import build_graph
from topology.export.kiali import to_kiali
from topology.options import NodeSelector, RateModes

CORPUS = require_corpus("kiali-graph")
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "expected.json").exists())
# Cases out of scope, with the reason (never silently dropped).
OUT_OF_SCOPE: dict[str, str] = {}
RESULTS: dict[str, bool] = {}


class _Summary:
    def pytest_terminal_summary(self, terminalreporter):
        if RESULTS:
            passed = sum(RESULTS.values())
            terminalreporter.write_line(f"conformance kiali-graph: {passed}/{len(CASES)} cases pass")


@pytest.fixture(scope="module", autouse=True)
def _register_summary(request):
    pm = request.config.pluginmanager
    if not pm.has_plugin("kiali-graph-summary"):
        pm.register(_Summary(), "kiali-graph-summary")
    yield


def _reporter(promql: str, labels: dict) -> str:
    m = re.search(r'reporter=~?"([^"]+)"', promql)
    options = m.group(1).split("|") if m else ["destination"]
    return labels.get("reporter") if labels.get("reporter") in options else options[-1]


def case_frame(case: str) -> pd.DataFrame:
    data = json.loads((CORPUS / case / "input.json").read_text())
    rows = []
    for q in sorted((q for q in data["queries"] if q["issued"]), key=lambda q: q["issue_order"]):
        for s in q["series"]:
            rows.append({**s["labels"], "reporter": _reporter(q["promql"], s["labels"]), "metric": s["metric"],
                         "rate": float(s["value"])})
    return pd.DataFrame(rows, columns=sorted({k for r in rows for k in r}) or ["metric", "rate", "reporter"])


def case_graph(case: str) -> dict:
    params = json.loads((CORPUS / case / "params.json").read_text())
    node = None
    if params["graph_kind"] == "node":
        n = params["node"]
        kind = n["type"]
        node = NodeSelector(kind=kind, namespace=n["namespace"], name=n[kind], version=n.get("version"))
    env = params["environment"]
    accessible = {(c, ns) for c, nss in env["clusters"].items() for ns in nss}
    waypoints = {(w["cluster"], w["namespace"], w["name"]) for w in env.get("waypoints", [])}
    graph = build_graph(case_frame(case), params["graphType"],
                        namespaces=params["namespaces"] if node is None else None, node=node,
                        rate_modes=RateModes(**params["rates"]), inject_service_nodes=params["injectServiceNodes"],
                        include_idle_edges=params["includeIdleEdges"],
                        accessible=accessible, appenders=params["appenders_requested"],
                        window_s=params["duration_seconds"], query_time=params["queryTime"],
                        ambient=params["ambientTraffic"], waypoints=waypoints)
    return to_kiali(graph)


@pytest.mark.parametrize("case", CASES)
def test_case(case):
    if case in OUT_OF_SCOPE:
        RESULTS[case] = False
        pytest.xfail(OUT_OF_SCOPE[case])
    expected = json.loads((CORPUS / case / "expected.json").read_text())
    got = case_graph(case)
    RESULTS[case] = got == expected
    if got != expected:
        a = json.dumps(expected, indent=1, sort_keys=True).splitlines()
        b = json.dumps(got, indent=1, sort_keys=True).splitlines()
        diff = "\n".join(list(difflib.unified_diff(a, b, "expected", "got", lineterm="", n=2))[:80])
        pytest.fail(f"{case} differs from Kiali's golden graph:\n{diff}")


def test_corpus_present():
    assert len(CASES) == 16, f"expected 16 kiali-graph cases under {CORPUS}"
