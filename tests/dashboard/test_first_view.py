"""A page's first view without waiting on work that could be done before it (issue #17, the cold first view).

The server prepares its first views as it starts (`dashboard.app.prepare`), a page asking meanwhile shares
that work, and the Dash layout request of a page load carries the page itself (no router round trip).
"""
from __future__ import annotations

import json

import httpx

from dashboard.app import create_app
from dashboard.pages import topology
from dashboard.sample import bookinfo_snapshot, synthetic_snapshot
from dashboard.server import start
from dashboard.snapshot_source import SnapshotSource
from tests.util import wait_until

CSRF = {"X-Meshscope-CSRF": "1"}


def _ids(layout: dict) -> set[str]:
    out: set[str] = set()
    stack = [layout]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("props"), dict) and "id" in node["props"]:
                out.add(str(node["props"]["id"]))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out


def _page_for(layout: dict):
    stack = [layout]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if (node.get("props") or {}).get("id") == "page-for":
                return node["props"].get("data")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    raise AssertionError("no page-for store in the layout")


def _route_body(pathname: str, search: str, page_for: str | None) -> bytes:
    """What the browser sends for the router callback (with the layout's page-for store as its state)."""
    return json.dumps({"output": "..page.children...nav.children..",
                       "outputs": [{"id": "page", "property": "children"}, {"id": "nav", "property": "children"}],
                       "inputs": [{"id": "url", "property": "pathname", "value": pathname},
                                  {"id": "url", "property": "search", "value": search}],
                       "state": [{"id": "page-for", "property": "data", "value": page_for}],
                       "changedPropIds": ["url.pathname"]}).encode()


def test_the_layout_request_of_a_page_load_carries_the_page_and_the_router_does_not_render_it_again():
    client = create_app(SnapshotSource(bookinfo_snapshot())).server.test_client()
    loaded = client.get("/_dash-layout", headers={"Referer": "http://localhost/topology?graphType=service"}).get_json()
    assert "topo-graph" in _ids(loaded)  # the topology page is in the layout
    assert _page_for(loaded) == "/topology?graphType=service"
    # no page load behind it (no Referer, another origin, a path that is not a page): the bare shell, as before
    for headers in ({}, {"Referer": "http://elsewhere.example/topology"}):
        bare = client.get("/_dash-layout", headers=headers).get_json()
        assert "topo-graph" not in _ids(bare) and _page_for(bare) is None
    missing = client.get("/_dash-layout", headers={"Referer": "http://localhost/nope"}).get_json()
    assert "Not found" in json.dumps(missing)
    # the router's first call for that URL leaves the page as the layout brought it and clears page-for, so a
    # later visit to the same URL (after another page) renders it
    first = client.post("/_dash-update-component", data=_route_body("/topology", "?graphType=service",
                                                                    "/topology?graphType=service"),
                        headers={**CSRF, "Content-Type": "application/json"})
    assert first.status_code in (200, 204)
    assert "topo-graph" not in first.get_data(as_text=True)
    if first.status_code == 200:
        assert '"page-for"' in first.get_data(as_text=True)  # the side update clearing it
    again = client.post("/_dash-update-component", data=_route_body("/topology", "?graphType=service", None),
                        headers={**CSRF, "Content-Type": "application/json"})
    assert again.status_code == 200 and "topo-graph" in again.get_data(as_text=True)
    other = client.post("/_dash-update-component", data=_route_body("/findings", "", "/topology?graphType=service"),
                        headers={**CSRF, "Content-Type": "application/json"})
    assert other.status_code == 200 and "topo-graph" not in other.get_data(as_text=True)


def test_the_server_prepares_its_first_views_once_and_a_page_asking_meanwhile_shares_them(monkeypatch):
    laid: list[str] = []
    real = topology._laid_out

    def counted(source, ctx, result, view):  # noqa: ANN001, ANN202 - the real layout, counted
        laid.append(repr(sorted((k, v) for k, v in (view or {}).items() if v not in (None, "", [], ()))))
        return real(source, ctx, result, view)

    monkeypatch.setattr(topology, "_laid_out", counted)
    source = SnapshotSource(synthetic_snapshot(600))  # above the grouping threshold: the default view is grouped
    ui = start(source, port=0)
    try:
        # a page opened the moment the server is up (the preparation is under way or done)
        page = httpx.get(f"{ui.url}/_dash-layout", headers={"Referer": f"{ui.url}/topology?group=none"}, timeout=60)
        assert page.status_code == 200 and "topo-canvas" in page.text
        wait_until(lambda: not ui.preparing.is_alive(), timeout=60, interval=0.05, what="the server's preparation")
        assert source.graph_builds == 1  # one build, shared by the preparation and the page
        assert len(laid) == len(set(laid)) == 2, laid  # the grouped default and the expanded view, once each
        ctx = ui.app.meshscope_ctx
        assert ctx.positions.known("workload") and ctx.positions.known("workload|namespace|")
        # the default page and a refresh of the same graph are answered from what was laid out
        grouped = httpx.get(f"{ui.url}/_dash-layout", headers={"Referer": f"{ui.url}/topology"}, timeout=60)
        assert grouped.status_code == 200 and "agg:ns:" in grouped.text
        assert len(laid) == 2 and source.graph_builds == 1
    finally:
        ui.stop()


def test_a_click_on_a_group_finds_its_full_data_after_the_expanded_view_was_prepared():
    """The server prepares the grouped default and then the expanded graph of one view: a click on an aggregate of
    the grouped page (whose side panel needs the full data: roll-up, worst members) must still find it."""
    source = SnapshotSource(synthetic_snapshot(400, seed=3, namespaces=8))
    app = create_app(source)
    ctx = app.meshscope_ctx
    topology.layout(source, ctx, {})  # the page, grouped
    topology.layout(source, ctx, {"group": "none"})  # then the expanded graph of the same view (as `prepare` does)
    data = topology.FULL.get(("workload", (), 300.0, 0), "agg:ns:ns-2")
    assert data is not None and data["worst"] and data["members"] == 50
    # and a workload drawn in the expanded graph is found there too
    assert topology.FULL.get(("workload", (), 300.0, 0), "wl:ns-2/svc-2-v1")["id"] == "wl:ns-2/svc-2-v1"
