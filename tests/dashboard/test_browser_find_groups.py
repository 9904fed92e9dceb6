"""Find/hide in headless Chromium on a grouped mesh: the server's matches are the browser's, and they reach members."""
from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from dashboard.components.find_hide import edge_mask, node_mask, parse, to_selector
from dashboard.sample import synthetic_snapshot
from dashboard.snapshot_source import SnapshotSource
from tests.dashboard.browser_helpers import cy, text_of, wait_for_graph
from tests.util import wait_until

pytestmark = pytest.mark.browser

# one of each kind of clause: text =, ~, !~, numbers on nodes and edges, shorthands, and/or, node-or-edge fields
EXPRESSIONS = ["name ~ svc-1", "ns = ns-2 and rps > 10", "error > 5", "failing or mismatch", "p95 >= 150",
               "!mtls", "name !~ 3 and unhealthy", "health != healthy", "rps <= 1 or p99 > 250"]
AGGREGATES = "Object.fromEntries(cy.nodes('.aggregate').map(n => [n.id(), {members: n.data('members'), " \
             "found: n.data('found') || 0, label: n.style('label'), health: n.data('health')}]))"


def _type(browser, box: str, text: str) -> None:
    field = browser.find_element(By.ID, box)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(text, Keys.ENTER)


def test_find_and_hide_reach_members_of_collapsed_groups(browser, ui_server):
    snap = synthetic_snapshot(400, seed=5, namespaces=8)  # 400 > the default threshold of 300: opens grouped
    nodes, edges = snap["graphs"]["workload"]["nodes"], snap["graphs"]["workload"]["edges"]
    ui = ui_server(SnapshotSource(snap), refresh_s=0)

    # the plain graph: the server's masks select exactly what the browser's selectors select
    browser.get(ui.url + "/topology?group=none")
    wait_for_graph(browser, 400, timeout=90)
    for expr in EXPRESSIONS:
        alts = parse(expr)
        want = sorted([n["id"] for n, m in zip(nodes, node_mask(nodes, alts)) if m]
                      + [e["id"] for e, m in zip(edges, edge_mask(edges, alts)) if m])
        got = sorted(cy(browser, f"cy.$({json.dumps(to_selector(expr))}).map(e => e.id())"))
        assert got == want, expr

    browser.get(ui.url + "/topology")
    wait_for_graph(browser, 8, timeout=90)
    assert sum(a["members"] for a in cy(browser, AGGREGATES).values()) == 400

    # hide: hidden members leave their group's roll-up
    failing = {n["id"] for n in nodes if n["health"] == "failing"}
    assert failing
    _type(browser, "topo-hide", "failing")
    wait_until(lambda: sum(a["members"] for a in cy(browser, AGGREGATES).values()) == 400 - len(failing), 60,
               what="hidden members out of the roll-up")
    assert all(a["health"] != "failing" for a in cy(browser, AGGREGATES).values())

    # find: each group holding matches is marked with how many of its (visible) members match
    _type(browser, "topo-find", "name ~ svc-1")
    matches = {n["id"] for n in nodes if "svc-1" in n["name"]} - failing
    per_ns: dict[str, int] = {}
    for nid in matches:
        per_ns[nid.split(":", 1)[1].split("/", 1)[0]] = per_ns.get(nid.split(":", 1)[1].split("/", 1)[0], 0) + 1
    wait_until(lambda: {k: a["found"] for k, a in cy(browser, AGGREGATES).items() if a["found"]}
               == {f"agg:ns:{ns}": n for ns, n in per_ns.items()}, 60, what="found counts on the aggregates")
    aggs = cy(browser, AGGREGATES)
    assert all(a["label"].endswith(f"({a['found']} found)") for a in aggs.values() if a["found"])
    assert cy(browser, "cy.$('.aggregate[found > 0]').style('overlay-opacity')") != "0"  # highlighted
    wait_until(lambda: f"find: {len(matches)} inside {len(per_ns)} collapsed group(s)" in text_of(browser, "#topo-found-text"),
               30, what="the find's message")

    # the offer to open them: every matching workload drawn as itself, still highlighted; hidden ones stay out
    browser.find_element(By.ID, "topo-expand-found").click()
    wait_until(lambda: matches <= set(cy(browser, "cy.nodes().map(n => n.id())")), 60, what="matching members shown")
    shown = set(cy(browser, "cy.nodes().map(n => n.id())"))
    assert not shown & failing
    assert set(cy(browser, "cy.nodes('[found > 0]').map(n => n.id())")) == matches


# the page's answers: its Dash layout (a page load's carries the page) and the callbacks'
RESPONSES = """return performance.getEntriesByType('resource')
    .filter(e => e.name.includes('_dash-update-component') || e.name.includes('_dash-layout'))
    .map(e => e.encodedBodySize);"""


def test_a_refresh_that_changes_nothing_sends_no_elements(browser, ui_server):
    """A snapshot's graph never changes: each 2 s refresh must not re-send (and make the browser re-diff) it all."""
    ui = ui_server(SnapshotSource(synthetic_snapshot(400, seed=6, namespaces=8)), refresh_s=2)
    browser.get(ui.url + "/topology?group=none")
    wait_for_graph(browser, 400, timeout=90)
    first = browser.execute_script(RESPONSES)
    page = max(first)  # the page itself, elements included
    assert page > 200_000
    # four more refresh ticks (each answers the graph callback and the replay marks): all small
    later = wait_until(lambda: (lambda r: r if len(r) >= len(first) + 8 else None)(browser.execute_script(RESPONSES)),
                       90, what="refreshes")
    assert max(later[len(first):]) < page / 20, later[len(first):]
    assert cy(browser, "cy.nodes().length") == 400
