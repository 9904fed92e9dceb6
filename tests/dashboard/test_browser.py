"""The UI in a real headless Chromium against a real server: graph, clicks, findings, traces, refresh, escaping."""
from __future__ import annotations

import copy

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from dashboard.sample import bookinfo_snapshot
from dashboard.snapshot_source import SnapshotSource
from tests.dashboard.browser_helpers import GREEN, RED, click_element, css, cy, sel, text_of, wait_for_graph
from tests.util import wait_until

pytestmark = pytest.mark.browser

FAILING_EDGE = "wl:bookinfo/reviews-v2->svc:bookinfo/ratings"


@pytest.fixture(scope="module")
def bookinfo_ui():
    from dashboard.server import start
    ui = start(SnapshotSource(bookinfo_snapshot()), port=0)
    yield ui
    ui.stop()


def test_topology_renders_bookinfo_with_health_colors(browser, bookinfo_ui):
    browser.get(bookinfo_ui.url + "/topology")
    wait_for_graph(browser, 12)
    names = set(cy(browser, "cy.nodes().map(n => n.data('name'))"))
    assert {"productpage-v1", "details-v1", "reviews-v1", "reviews-v2", "reviews-v3", "ratings-v1",
            "istio-ingressgateway"} <= names
    assert cy(browser, "cy.edges().length") == 12
    assert cy(browser, f"cy.$('{sel(FAILING_EDGE)}').style('line-color')") == RED
    assert cy(browser, f"cy.$('{sel(FAILING_EDGE)}').style('line-style')") == "dashed"  # mTLS intent mismatch
    assert cy(browser, "cy.$('[id = \"svc:bookinfo/details->wl:bookinfo/details-v1\"]').style('line-color')") == GREEN
    assert cy(browser, "cy.$('[id = \"svc:bookinfo/ratings\"]').style('shape')") == "diamond"
    assert cy(browser, "cy.$('[id = \"wl:bookinfo/ratings-v1\"]').style('shape')") == "ellipse"
    label = cy(browser, f"cy.$('{sel(FAILING_EDGE)}').style('label')")
    assert "2.10rps" in label and "61.9%err" in label and "mTLS" in label
    assert "Last updated" in text_of(browser, ".updated")
    severe = [l for l in browser.get_log("browser") if l["level"] == "SEVERE"]
    assert severe == []


def test_graph_type_from_the_url(browser, bookinfo_ui):
    browser.get(bookinfo_ui.url + "/topology?graphType=service")
    wait_for_graph(browser, 6)
    assert cy(browser, "cy.$('[id = \"svc:bookinfo/reviews->svc:bookinfo/ratings\"]').style('line-color')") == RED
    browser.get(bookinfo_ui.url + "/topology?graphType=app&namespaces=istio-system")
    wait_for_graph(browser, 3)
    assert cy(browser, "cy.$('[id = \"svc:bookinfo/productpage\"]').style('opacity')") == "0.55"  # outsider


def test_clicking_the_red_edge_shows_its_findings_and_charts(browser, bookinfo_ui):
    browser.get(bookinfo_ui.url + "/topology")
    wait_for_graph(browser, 12)
    click_element(browser, FAILING_EDGE)
    wait_until(lambda: "reviews-v2" in text_of(browser, "#panel-title"), 60, what="edge panel")
    findings = text_of(browser, "#panel-findings")
    assert "MS2001" in findings and "MS3002" in findings and "STRICT mTLS" in findings
    wait_until(lambda: len(css(browser, "#topo-panel .js-plotly-plot")) == 3, 60, what="golden metrics + breakdowns")
    panel = text_of(browser, "#topo-panel")
    assert "requests/s, errors %, latency ms" in panel
    assert "response codes" in panel and "response flags" in panel and "Recent traces through ratings" in panel
    click_element(browser, "svc:bookinfo/ratings")
    wait_until(lambda: text_of(browser, "#panel-title") == "service bookinfo/ratings", 60, what="node panel")
    wait_until(lambda: "response codes (inbound)" in text_of(browser, "#topo-panel"), 60, what="node breakdowns")
    assert "MS4001" in text_of(browser, "#panel-findings")


def test_label_toggles_and_find_hide(browser, bookinfo_ui):
    browser.get(bookinfo_ui.url + "/topology")
    wait_for_graph(browser, 12)
    browser.find_element(By.CSS_SELECTOR, "#topo-labels input[value='rps']").click()
    wait_until(lambda: "rps" not in cy(browser, f"cy.$('{sel(FAILING_EDGE)}').style('label')"), 60, what="label update")
    assert "61.9%err" in cy(browser, f"cy.$('{sel(FAILING_EDGE)}').style('label')")
    hide = browser.find_element(By.ID, "topo-hide")
    hide.send_keys("healthy", Keys.ENTER)
    wait_until(lambda: cy(browser, "cy.nodes(':visible').length") < 12, 60, what="hidden healthy nodes")
    assert set(cy(browser, "cy.nodes(':visible').map(n => n.data('name'))")) == {"ratings"}
    assert cy(browser, "cy.edges(':visible').length") == 0  # edges of hidden nodes go too
    browser.find_element(By.ID, "topo-find").send_keys("error > 10", Keys.ENTER)
    wait_until(lambda: cy(browser, f"cy.$('{sel(FAILING_EDGE)}').style('overlay-opacity')") != "0", 60, what="found edge")
    assert cy(browser, "cy.$('[id = \"svc:bookinfo/ratings\"]').style('overlay-opacity')") != "0"
    assert cy(browser, "cy.$('[id = \"svc:bookinfo/details\"]').style('overlay-opacity')") == "0"
    hide.send_keys(Keys.CONTROL, "a")
    hide.send_keys("colour = red", Keys.ENTER)
    wait_until(lambda: "unknown field 'colour'" in text_of(browser, "#topo-expr-error"), 60, what="expression error")
    assert cy(browser, "cy.nodes(':visible').length") == 12


def test_findings_table_filters_and_detail_highlights_yaml(browser, bookinfo_ui):
    browser.get(bookinfo_ui.url + "/findings")
    wait_until(lambda: len(css(browser, "#find-table tbody tr td")) > 0, 60, what="findings table")
    assert text_of(browser, "#find-count") == "5 findings"
    for sev in ("warning", "info"):
        browser.find_element(By.CSS_SELECTOR, f"#find-severity input[value='{sev}']").click()
    wait_until(lambda: text_of(browser, "#find-count") == "2 findings", 60, what="severity filter")
    rows = [r.text for r in css(browser, "#find-table tbody tr") if r.find_elements(By.CSS_SELECTOR, "td")]
    assert len(rows) == 2 and all("error" in r for r in rows)
    browser.find_element(By.CSS_SELECTOR, "#find-severity input[value='warning']").click()
    wait_until(lambda: text_of(browser, "#find-count") == "4 findings", 60, what="warnings back")
    codes = lambda: [c.text for c in css(browser, "#find-table td[data-dash-column='code']")]  # noqa: E731
    assert codes() == ["MS3002", "MS2001", "MS1004", "MS4001"]  # the source's order: severity, then impact
    sort = browser.find_element(By.CSS_SELECTOR, "#find-table th[data-dash-column='code'] .column-header--sort")
    sort.click()
    sort.click()  # second click: descending
    wait_until(lambda: codes() == ["MS4001", "MS3002", "MS2001", "MS1004"], 60, what="sorted by code")
    cell = next(c for c in css(browser, "#find-table td[data-dash-column='code']") if c.text == "MS2001")
    cell.click()
    wait_until(lambda: "Remediation" in text_of(browser, "#find-detail"), 60, what="finding detail")
    marked = [" ".join(m.text.split()) for m in css(browser, "#find-detail .yaml-line.hl")]
    assert marked == ["10 mode: DISABLE", "8 mode: STRICT"]
    browser.find_element(By.ID, "finding-show-on-graph").click()
    wait_for_graph(browser, 12)
    wait_until(lambda: cy(browser, f"cy.$('{sel(FAILING_EDGE)}').style('overlay-opacity')") not in (None, "0"), 60,
               what="highlighted edge")
    assert cy(browser, "cy.$('[id = \"wl:bookinfo/details-v1\"]').style('overlay-opacity')") == "0"
    # the same finding on the service graph: its elements are found again there
    browser.get(browser.current_url + "&graphType=service")
    marked = ("cy.elements().filter(e => e.style('overlay-opacity') !== '0').map(e => e.isNode() ? e.data('name')"
              " : e.source().data('name') + '->' + e.target().data('name')).sort()")
    wait_until(lambda: cy(browser, marked), 60, what="highlight on the service graph")
    assert cy(browser, marked) == ["ratings", "reviews", "reviews->ratings"]


def test_trace_waterfall_opens_with_span_attributes(browser, bookinfo_ui):
    browser.get(bookinfo_ui.url + "/traces")
    wait_until(lambda: len(css(browser, "#tr-table td[data-dash-column='trace_id']")) > 0, 60, what="trace table")
    browser.find_element(By.CSS_SELECTOR, "#tr-status input[value='error']").click()
    browser.find_element(By.ID, "tr-search").click()
    wait_until(lambda: text_of(browser, "#tr-count").endswith("traces"), 60, what="search result")
    statuses = {c.text for c in css(browser, "#tr-table td[data-dash-column='status']")}
    assert statuses == {"error"}
    first = css(browser, "#tr-table td[data-dash-column='trace_id']")[0]
    trace_id = first.text
    first.click()
    wait_until(lambda: len(css(browser, "#tr-waterfall .point path")) == 5, 60, what="5 span bars")
    assert trace_id in text_of(browser, "#tr-waterfall-box")
    from selenium.webdriver.common.action_chains import ActionChains
    bar = css(browser, "#tr-waterfall .point path")[-1]
    ActionChains(browser).move_to_element(bar).click().perform()
    wait_until(lambda: "Attributes" in text_of(browser, "#tr-attrs"), 60, what="span attributes")
    assert "http.status_code" in text_of(browser, "#tr-attrs")


def _hostile() -> dict:
    snap = bookinfo_snapshot()
    evil = '<img src=x onerror="window.__pwned=1">'
    for n in snap["graphs"]["workload"]["nodes"]:
        if n["id"] == "svc:bookinfo/details":
            n["name"] = evil
    snap["findings"][0]["message"] = '<script>window.__pwned=2</script> & "quoted"'
    snap["spans"][0]["attributes"]["http.url"] = evil
    return snap


def test_untrusted_strings_are_shown_as_text(browser, ui_server):
    ui = ui_server(SnapshotSource(_hostile()))
    for path, ready in (("/", "#ov-findings"), ("/findings", "#find-table td"), ("/services", "#svc-table")):
        browser.get(ui.url + path)
        wait_until(lambda: css(browser, ready), 60, what=path)
        assert browser.execute_script("return window.__pwned === undefined")
    assert '<img src=x onerror="window.__pwned=1">' in text_of(browser, "#svc-table")
    browser.get(ui.url + "/")
    wait_until(lambda: css(browser, "#ov-findings"), 60, what="overview")
    assert "<script>window.__pwned=2</script>" in text_of(browser, "#ov-findings")
    browser.get(ui.url + "/topology")
    wait_for_graph(browser, 12)
    assert browser.execute_script("return window.__pwned === undefined")
    assert not css(browser, "img[src='x']")


class ScenarioSource:
    """Two snapshots, baseline and incident; applying the scenario swaps them (like the bundled mesh does)."""

    def __init__(self, baseline: dict, incident: dict):
        self._sources = {None: SnapshotSource(baseline), "mtls-mismatch": SnapshotSource(incident)}
        self.active: str | None = None

    def __getattr__(self, name):
        return getattr(self._sources[self.active], name)

    def scenarios(self):
        return [{"name": "mtls-mismatch", "description": "DestinationRule disables TLS under STRICT mTLS",
                 "active": self.active == "mtls-mismatch"}]

    def apply_scenario(self, name):
        if name not in self._sources:
            raise KeyError(name)
        self.active = name


def _baseline() -> dict:
    snap = copy.deepcopy(bookinfo_snapshot())
    snap["generated_at"] -= 60
    for e in snap["graphs"]["workload"]["edges"]:
        e.update(codes={"200": e["rps"]}, flags={}, error_pct=0.0, health="healthy",
                 mtls_state="full" if e["source"] != "unknown" else "none")
    for n in snap["graphs"]["workload"]["nodes"]:
        n.update(error_pct=0.0, health="healthy")
    snap["findings"] = []
    return snap


def _incident_with_a_new_workload() -> dict:
    snap = bookinfo_snapshot()
    g = snap["graphs"]["workload"]
    g["nodes"].append({"id": "wl:bookinfo/ratings-v2", "type": "workload", "name": "ratings-v2", "namespace": "bookinfo",
                       "app": "ratings", "version": "v2", "badges": [], "health": "healthy", "rps_in": 0.5})
    g["edges"].append({"id": "svc:bookinfo/ratings->wl:bookinfo/ratings-v2", "source": "svc:bookinfo/ratings",
                       "target": "wl:bookinfo/ratings-v2", "protocol": "http", "rps": 0.5, "error_pct": 0.0,
                       "health": "healthy", "mtls_state": "full", "mtls_pct": 100.0, "codes": {"200": 0.5}})
    return snap


def test_scenario_turns_the_edge_red_within_the_refresh_interval(browser, ui_server):
    source = ScenarioSource(_baseline(), _incident_with_a_new_workload())
    ui = ui_server(source, refresh_s=2)
    browser.get(ui.url + "/topology")
    wait_for_graph(browser, 12)
    assert cy(browser, f"cy.$('{sel(FAILING_EDGE)}').style('line-color')") == GREEN
    before = cy(browser, "cy.nodes().map(n => [n.id(), n.position('x'), n.position('y')])")
    click_element(browser, FAILING_EDGE)
    wait_until(lambda: "Findings (0)" in text_of(browser, "#topo-panel"), 60, what="healthy edge panel")
    cy(browser, "(cy.zoom(1.7), cy.pan({x: -40, y: 25}), true)")  # the user zoomed in on something
    updated = text_of(browser, "#topo-updated")
    r = httpx.post(ui.url + "/api/v1/scenarios/mtls-mismatch", headers={"X-Meshscope-CSRF": "1"})
    assert r.status_code == 200
    wait_until(lambda: cy(browser, f"cy.$('{sel(FAILING_EDGE)}').style('line-color')") == RED, 60,
               what="edge turning red after auto-refresh")
    assert text_of(browser, "#topo-updated") != updated
    wait_until(lambda: cy(browser, "cy.nodes().length") == 13, 60, what="the new workload")
    wait_until(lambda: "MS2001" in text_of(browser, "#panel-findings"), 60, what="open panel following the data")
    after = cy(browser, "cy.nodes().map(n => [n.id(), n.position('x'), n.position('y')])")
    assert [p for p in after if p[0] != "wl:bookinfo/ratings-v2"] == before  # old nodes stay put
    assert cy(browser, "[cy.zoom(), cy.pan().x, cy.pan().y]") == [1.7, -40, 25]  # and so does the view
    # the overview's switch clears it again
    browser.get(ui.url + "/")
    wait_until(lambda: "active: mtls-mismatch" in text_of(browser, "#ov-scenario-status"), 60, what="scenario switch")
    browser.find_element(By.ID, "ov-clear").click()
    wait_until(lambda: text_of(browser, "#ov-scenario-status") == "active: baseline", 60, what="cleared")
    assert source.active is None
    browser.find_element(By.ID, "ov-scenario").click()  # and applies one from the list
    wait_until(lambda: css(browser, "[role='option']"), 60, what="scenario list")
    css(browser, "[role='option']")[0].click()
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)  # close the list (it stays open for more picks)
    wait_until(lambda: not css(browser, "[role='option']"), 60, what="list closed")
    browser.find_element(By.ID, "ov-apply").click()
    wait_until(lambda: text_of(browser, "#ov-scenario-status") == "active: mtls-mismatch", 60, what="applied")
    assert source.active == "mtls-mismatch"


def test_login_page_in_the_browser(browser, ui_server):
    ui = ui_server(SnapshotSource(bookinfo_snapshot()), token="tok-123")
    browser.delete_all_cookies()
    browser.get(ui.url + "/topology")
    browser.find_element(By.ID, "token").send_keys("tok-123")
    browser.find_element(By.ID, "login-submit").click()
    wait_for_graph(browser, 12)
    assert browser.current_url.endswith("/topology")
    browser.delete_all_cookies()


def test_a_failing_page_says_what_broke(browser, ui_server):
    class Broken(SnapshotSource):
        def slos(self):
            raise RuntimeError("SLO engine is not running")

    ui = ui_server(Broken(bookinfo_snapshot()))
    browser.get(ui.url + "/slos")
    wait_until(lambda: "SLO engine is not running" in text_of(browser, "#page-problem"), 60, what="problem box")
    browser.find_element(By.LINK_TEXT, "Findings").click()  # the rest of the UI still works
    wait_until(lambda: text_of(browser, "#find-count") == "5 findings", 60, what="findings page")


def test_no_page_fetches_anything_from_outside(browser, bookinfo_ui):
    for path, ready in (("/topology", "#topo-graph canvas"), ("/services?name=reviews.bookinfo.svc.cluster.local",
                                                            "#svc-detail .main-svg"), ("/findings", "#find-table td")):
        browser.get(bookinfo_ui.url + path)
        wait_until(lambda: css(browser, ready), 60, what=path)
        fetched = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert fetched and all(url.startswith(bookinfo_ui.url) for url in fetched), fetched


def test_slo_page_shows_burn_rates_and_budget_charts(browser, bookinfo_ui):
    browser.get(bookinfo_ui.url + "/slos")
    wait_until(lambda: len(css(browser, ".chart-row .main-svg")) >= 3, 60, what="budget charts")
    row = next(r.text for r in css(browser, "#slo-table tbody tr") if "ratings-availability" in r.text)
    assert "99.5%" in row and "71.0%" in row and "page" in row and "62.0x" in row
    assert "page 1h/5m \u226514.4x, page 6h/30m \u22656.0x" in row  # the firing multiwindow pairs
    hot = {c.text for c in css(browser, "#slo-table .burn-hot")}
    assert hot == {"64.1x", "55.0x", "62.0x", "30.2x", "11.3x"}  # 6x and above
    headers = [h.text for h in css(browser, "#slo-table th")]
    assert headers[-7:] == ["burn 5m", "burn 30m", "burn 1h", "burn 2h", "burn 6h", "burn 1d", "burn 3d"]


def _topology_report(tmp_path, graph_type: str):
    """A report snapshot whose graph is the real topology pipeline's Cytoscape export."""
    from diagnose.reports import build_snapshot, save_snapshot
    from topology import build_graph, to_cytoscape
    from topology.synthetic import synthetic_rates

    rates = synthetic_rates(workloads=40, services=8, edges=60, namespaces=3, error_share=0.3)
    exported = to_cytoscape(build_graph(rates, graph_type))
    path = tmp_path / f"{graph_type}.json"
    save_snapshot(build_snapshot([], graph=exported, generated_at=1_795_000_000.0), path)
    return exported, path


@pytest.mark.parametrize("graph_type", ["workload", "versionedApp"])
def test_real_topology_exports_draw_with_their_health(browser, ui_server, tmp_path, graph_type):
    exported, path = _topology_report(tmp_path, graph_type)
    ui = ui_server(SnapshotSource.from_file(path))
    browser.get(ui.url + "/topology")
    nodes = [e["data"] for e in exported if "source" not in e["data"]]
    wait_for_graph(browser, len(nodes))
    colour = {"Failure": RED, "Healthy": GREEN}
    assert {d.get("health") for d in (e["data"] for e in exported if "source" in e["data"])} >= set(colour)
    for d in (e["data"] for e in exported if "source" in e["data"]):
        if d.get("health") in colour:
            assert cy(browser, f"cy.$('{sel(d['id'])}').style('line-color')") == colour[d["health"]], d
    boxes = [d["id"] for d in nodes if d.get("node_type") == "box"]
    if graph_type == "versionedApp":  # compound app boxes hold their versions
        assert boxes and all(cy(browser, f"cy.$('{sel(b)}').isParent()") for b in boxes)


class _EngineSloSource(SnapshotSource):
    """SLO numbers straight from the SLO engine: one burning, one without data yet."""

    def slos(self):
        from diagnose.slo import DEMO_SLOS, evaluate, load_slos

        loaded = load_slos([DEMO_SLOS])
        slos = getattr(loaded, "slos", loaded)
        burning = evaluate(slos[0], None, 1_795_000_000.0, ratio=lambda w: (0.2, 5000.0)).to_dict()
        silent = evaluate(slos[1], None, 1_795_000_000.0, ratio=lambda w: (0.0, 0.0)).to_dict()
        return [burning, silent]


def test_slo_page_reads_the_slo_engine(browser, ui_server):
    source = _EngineSloSource(bookinfo_snapshot())
    burning, silent = source.slos()
    ui = ui_server(source)
    browser.get(ui.url + "/slos")
    wait_until(lambda: css(browser, "#slo-table tbody tr"), 60, what="SLO table")
    rows = {r.text.split()[0]: r.text for r in css(browser, "#slo-table tbody tr")}
    assert "overspent" in rows[burning["name"]] and burning["alert"] in rows[burning["name"]]
    assert "no data" in rows[silent["name"]]
    labels = [h.text.removeprefix("burn ") for h in css(browser, "#slo-table th") if h.text.startswith("burn ")]
    assert set(labels) == set(burning["burn_rates"])
    assert not css(browser, "#page-problem")


class HeldRefresh(SnapshotSource):
    """A snapshot whose next auto-refresh graph read waits at a gate: a refresh in flight, on demand."""

    def __init__(self, snapshot):  # noqa: ANN001
        super().__init__(snapshot)
        import threading
        self.armed, self.entered, self.gate = False, threading.Event(), threading.Event()

    def graph(self, *args, **kwargs):  # noqa: ANN002, ANN003
        import dataclasses

        from dash import callback_context
        result = super().graph(*args, **kwargs)
        if self.armed and "topo-graph" in str(callback_context.outputs_list):  # the page's refresh, nothing else
            self.armed = False
            self.entered.set()
            self.gate.wait(60)
            result = dataclasses.replace(result, notes=[*result.notes, "held refresh"])
        return result


def test_a_click_during_a_refresh_in_flight_keeps_its_panel(browser, ui_server):
    """The refresh redraws the open panel for the element its request had selected; a click since then wins."""
    source = HeldRefresh(bookinfo_snapshot())
    ui = ui_server(source, refresh_s=10)
    browser.get(ui.url + "/topology")
    wait_for_graph(browser, 12)
    click_element(browser, "svc:bookinfo/ratings")
    wait_until(lambda: text_of(browser, "#panel-title") == "service bookinfo/ratings", 60, what="node panel")
    browser.execute_script("""window.__titles = [];
        new MutationObserver(() => { const t = document.querySelector('#panel-title');
            if (t) window.__titles.push(t.textContent); })
          .observe(document.querySelector('#topo-panel'), {childList: true, subtree: true, characterData: true});""")
    source.armed = True
    wait_until(source.entered.is_set, 60, what="an auto-refresh in flight (the page's refresh is every 10 s)")
    click_element(browser, FAILING_EDGE)  # while that refresh, sent with the node selected, is held
    wait_until(lambda: "reviews-v2" in text_of(browser, "#panel-title"), 60, what="the clicked edge's panel")
    source.gate.set()
    wait_until(lambda: "held refresh" in text_of(browser, "#topo-notes"), 60, what="the held refresh drawn")
    wait_until(lambda: "held refresh" not in text_of(browser, "#topo-notes"), 60, what="the next refresh drawn")
    titles = browser.execute_script("return window.__titles")
    after_click = titles[next(i for i, t in enumerate(titles) if "reviews-v2" in t):]
    assert all("reviews-v2" in t for t in after_click), titles  # the node's panel never came back
    assert "reviews-v2" in text_of(browser, "#panel-title")


def test_span_names_in_the_waterfall_are_text_not_plotly_markup(browser, ui_server):
    """Span names carry request paths anyone can send; Plotly would render `<a href>` in them as a live link."""
    snap = bookinfo_snapshot()
    trace_id = snap["spans"][0]["trace_id"]
    spans = [s for s in snap["spans"] if s["trace_id"] == trace_id]
    for s in spans:
        s["name"] = '<a href="https://evil.example/">login</a><b>x</b>'
    spans[0]["service_name"] = '<span style="font-size:80px">big</span>'
    ui = ui_server(SnapshotSource(snap))
    browser.get(f"{ui.url}/traces?trace={trace_id}")
    wait_until(lambda: len(css(browser, "#tr-waterfall .point path")) == len(spans), 60, what="the span bars")
    assert not css(browser, "#tr-waterfall a") and not css(browser, "#tr-waterfall [style*='80px']")
    assert '<a href="https://evil.example/">login</a>' in text_of(browser, "#tr-waterfall")
