"""plotly.js as the pages load it (dashboard/plotly_bundle.py): the basic build, and every chart still drawn.

The full bundle is one main-thread task of 3.7-7.3 s on a page's first chart (cold code cache, this 2-core box):
a frozen tab by issue #17's standard. The task is the parse and run of the file, so its size bounds it; the
browser test holds every page that draws charts to the small build (what the browser fetched, decoded) and to
drawing each chart with all its traces (a trace type missing from the build would leave it blank), on real
Chromium. The unit tests keep the class closed: every trace type the dashboard's code names is one the build
registers, and the file is the recorded one.
"""
from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path

import plotly.graph_objects as go
import pytest
import yaml

from dashboard.plotly_bundle import BUNDLE, TRACES
from dashboard.sample import bookinfo_snapshot
from dashboard.snapshot_source import SnapshotSource
from tests.util import wait_until

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"
# every plotly trace type (the python package knows them all: 49 at plotly.js 4)
PLOTLY_TRACES = {n.lower() for n in dir(go) if n[0].isupper() and getattr(getattr(go, n), "_path_str", None) == n.lower()}
LARGEST_BUNDLE = 1_500_000  # bytes the browser may parse for plotly.js (the full bundle: 4.8 MB)
# noted from the page's first script on: every long task (> 50 ms), ms since navigation
LONG_TASKS = """window._longTasks = [];
try { new PerformanceObserver(l => { for (const e of l.getEntries()) window._longTasks.push(Math.round(e.duration)); })
  .observe({type: 'longtask', buffered: true}); } catch (e) {}"""
# each chart: [its traces' types as asked, as drawn (plotly hides a trace whose type it lacks), drawn SVG traces]
CHARTS = """return [...document.querySelectorAll('.js-plotly-plot')].map(el => [
  (el.data || []).map(t => t.type || 'scatter'),
  (el._fullData || []).filter(t => t.visible !== false).map(t => t.type),
  el.querySelectorAll('g.trace').length])"""
PLOTLY_FETCHED = """return performance.getEntriesByType('resource').filter(e => /\\/plotly[^/]*\\.js/.test(e.name))
  .map(e => [e.name, e.decodedBodySize])"""


def trace_types_named(tree: ast.AST) -> set[str]:
    """String values of a "type" key in the dict literals of a module that are plotly trace type names."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if (isinstance(key, ast.Constant) and key.value == "type" and isinstance(value, ast.Constant)
                        and value.value in PLOTLY_TRACES):
                    found.add(value.value)
    return found


def test_every_trace_type_the_dashboard_names_is_in_the_served_build():
    assert {"scatter", "bar", "heatmap", "sankey"} <= PLOTLY_TRACES  # the scan knows plotly's names
    named = {}
    for path in DASHBOARD.rglob("*.py"):
        for kind in trace_types_named(ast.parse(path.read_text(), str(path))):
            named.setdefault(kind, []).append(str(path.relative_to(DASHBOARD)))
    assert {"scatter", "bar"} <= named.keys(), named  # the charts are found at all
    missing = {k: v for k, v in named.items() if k not in TRACES}
    assert not missing, f"trace types the served plotly build cannot draw (a blank chart): {missing}"
    # the scan sees a figure dict of another trace type (the check is not vacuous)
    assert trace_types_named(ast.parse('fig = {"data": [{"type": "heatmap", "z": [[1]]}]}')) == {"heatmap"}


def test_the_served_build_is_the_recorded_file_and_registers_what_it_says():
    record = yaml.safe_load((BUNDLE.parent / "sources.yaml").read_text())[BUNDLE.name]
    body = BUNDLE.read_bytes()
    assert hashlib.sha256(body).hexdigest() == record["sha256"]
    assert set(record["traces"]) == TRACES
    assert set(re.findall(rb'moduleType:"trace",name:"(\w+)"', body)) == {t.encode() for t in TRACES}
    assert len(body) < LARGEST_BUNDLE


@pytest.fixture
def long_tasks(browser):
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": LONG_TASKS})
    yield lambda: browser.execute_script("return window._longTasks || []")
    browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})


@pytest.mark.browser
def test_every_page_that_draws_charts_loads_the_basic_build_and_draws_each_chart(browser, ui_server, long_tasks):
    snap = bookinfo_snapshot()
    trace = snap["spans"][0]["trace_id"]
    service = sorted(snap["service_series"])[0]
    ui = ui_server(SnapshotSource(snap), refresh_s=0)
    pages = ("/slos", "/findings", f"/services?name={service}", f"/traces?trace={trace}")
    seen = {}
    for page in pages:
        browser.get(ui.url + page)

        def drawn():
            charts = browser.execute_script(CHARTS)
            # complete: every chart has drawn as many SVG traces as it asked for
            return charts if charts and all(asked and len(g) == len(asked) and n >= len(asked)
                                            for asked, g, n in charts) else None
        charts = wait_until(drawn, 60, what=f"every chart on {page} drawn")
        fetched = wait_until(lambda: browser.execute_script(PLOTLY_FETCHED), 30, what=f"plotly.js fetched by {page}")
        seen[page] = (len(charts), fetched, sorted(long_tasks(), reverse=True)[:3])
        assert all(asked == types for asked, types, _ in charts), (page, charts)
        assert all(size and size < LARGEST_BUNDLE for _, size in fetched), (
            f"{page} parsed plotly.js of {fetched} bytes (main-thread task grows with it): {seen}")
    assert sum(n for n, _, _ in seen.values()) >= len(pages) + 2, seen  # the pages did draw charts (slos: 3)
    severe = [line["message"] for line in browser.get_log("browser") if line["level"] == "SEVERE"]
    assert not severe, severe
