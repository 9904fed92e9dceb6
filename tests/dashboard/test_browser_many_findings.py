"""Issue #17 at the Findings page and the Overview: 5,000 open findings, one incident of 2,000 of them, in real
headless Chromium.

The incident lists listed every incident and every finding of each: 5,000 findings made 29,000 DOM nodes and a
16 s main-thread task on the Findings page (the tab frozen), and one incident of thousands of findings does the
same to the Overview's five. What is bounded is structural (items in the DOM), so the test holds the pages to
it, and to being complete and usable: the lists say how many more there are, the table pages through every
finding, the timeline draws.
"""
from __future__ import annotations

import copy
import json

import pytest

from dashboard.components.incidents import INCIDENTS_SHOWN, MEMBERS_SHOWN, open_incidents
from dashboard.pages.findings import rows
from dashboard.sample import bookinfo_snapshot
from dashboard.snapshot_source import SnapshotSource
from tests.dashboard.browser_helpers import css, text_of
from tests.util import wait_until

pytestmark = pytest.mark.browser

FINDINGS = 5_000
ONE_CAUSE = 2_000  # findings blamed on one object: one incident
LONG = "reconciliation-" * 20  # 300 characters in some object names
PAGE_NODES = 6_000  # DOM elements a page may hold (the old Findings page: 29,000)
DATA_ROWS = "return [...document.querySelectorAll('#find-table tr')].filter(tr => tr.querySelector('td')).length"
TICKS = "return window.dash_component_api.getLayout('find-interval').props.n_intervals"
ANSWER_BYTES = """return performance.getEntriesByType('resource').filter(e => e.startTime > arguments[0]
  && e.name.includes('_dash-update-component')).reduce((a, e) => a + e.decodedBodySize, 0)"""
LONG_TASKS = """window._longTasks = [];
try { new PerformanceObserver(l => { for (const e of l.getEntries()) window._longTasks.push(Math.round(e.duration)); })
  .observe({type: 'longtask', buffered: true}); } catch (e) {}"""


@pytest.fixture
def many_findings() -> dict:
    snap = bookinfo_snapshot()
    base = [f for f in snap["findings"] if f.get("resource")]
    out = []
    for i in range(FINDINGS):
        f = copy.deepcopy(base[i % len(base)])
        f.pop("fingerprint", None)
        f["status"] = "open"
        name = "ratings" if i < ONE_CAUSE else f"svc-{i}{LONG if i % 50 == 0 else ''}"
        f["resource"] = {**f["resource"], "kind": "DestinationRule", "namespace": "bookinfo", "name": name}
        f["related"] = []
        f["evidence"] = {**(f.get("evidence") or {}), "edge_key": f"wl:bookinfo/c{i}->svc:bookinfo/{name}"}
        f["elements"] = [f"wl:bookinfo/c{i}->svc:bookinfo/{name}"]
        f["impact"] = {"rps": 50.0 if i < ONE_CAUSE else 1.0 + i / FINDINGS, "share": 0.5}  # the big one first
        out.append(f)
    snap["findings"] = out
    return snap


@pytest.fixture
def long_tasks(browser):
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": LONG_TASKS})
    yield lambda: sorted(browser.execute_script("return window._longTasks || []"), reverse=True)[:5]
    browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})


def incident_items(driver, list_id: str) -> list[tuple[int, str]]:
    """Per listed incident: its finding items in the DOM, and its "more" note."""
    return driver.execute_script(f"""return [...document.querySelectorAll('#{list_id} li.incident')].map(li => [
        li.querySelectorAll('.incident-members > li:not(.incident-more)').length,
        (li.querySelector('.incident-more') || {{}}).textContent || ''])""")


def test_5000_findings_and_an_incident_of_2000_stay_bounded_on_findings_and_overview(browser, ui_server, many_findings, long_tasks):
    source = SnapshotSource(many_findings)
    incidents = open_incidents(source)
    sizes = sorted((len(i["findings"]) for i in incidents), reverse=True)
    assert sizes[0] == ONE_CAUSE and len(incidents) > INCIDENTS_SHOWN  # the input is what it says
    ui = ui_server(source, refresh_s=0)
    browser.get(ui.url + "/findings")
    wait_until(lambda: text_of(browser, "#find-count") == f"{FINDINGS} findings", 120, what="the table's count")
    wait_until(lambda: css(browser, "#find-timeline .main-svg g.trace"), 120, what="the timeline drawn")
    wait_until(lambda: browser.execute_script(DATA_ROWS) == 25, 60, what="a page of table rows")
    listed = incident_items(browser, "find-incidents")
    nodes = browser.execute_script("return document.getElementsByTagName('*').length")
    seen = f"{len(listed)} incidents listed, {nodes} DOM nodes, longest tasks {long_tasks()} ms"
    assert len(listed) == INCIDENTS_SHOWN, seen
    assert all(n <= MEMBERS_SHOWN for n, _ in listed), seen
    assert [MEMBERS_SHOWN, f"\u2026 and {ONE_CAUSE - 1 - MEMBERS_SHOWN} more findings of this incident"] in listed, seen
    more = len(incidents) - INCIDENTS_SHOWN
    assert text_of(browser, "#find-incidents .incidents-more").startswith(f"{more} more open incidents"), seen
    assert nodes < PAGE_NODES, seen
    # the table still reaches every finding, 25 a page
    assert text_of(browser, "#find-table div.last-page").strip() == str(-(-FINDINGS // 25))
    # refreshes (every 2 s here) that change nothing do not send the 5,000 rows again
    table_bytes = len(json.dumps(rows(source, {})))
    since = browser.execute_script("return [performance.now(), window.dash_component_api.getLayout('find-interval')"
                                   ".props.n_intervals || 0]")
    wait_until(lambda: (browser.execute_script(TICKS) or 0) >= since[1] + 3, 60, what="three refreshes")
    resent = browser.execute_script(ANSWER_BYTES, since[0])
    assert 0 < resent < table_bytes / 4, (resent, table_bytes)

    # the Overview's five incidents, the 2,000-finding one among them
    browser.get(ui.url + "/")
    wait_until(lambda: css(browser, "#ov-incidents li.incident"), 120, what="the Overview's incidents")
    listed = incident_items(browser, "ov-incidents")
    nodes = browser.execute_script("return document.getElementsByTagName('*').length")
    seen = f"{listed}, {nodes} DOM nodes, longest tasks {long_tasks()} ms"
    assert len(listed) == 5 and all(n <= MEMBERS_SHOWN for n, _ in listed), seen
    assert [MEMBERS_SHOWN, f"\u2026 and {ONE_CAUSE - 1 - MEMBERS_SHOWN} more findings of this incident"] in listed, seen
    assert nodes < PAGE_NODES, seen
