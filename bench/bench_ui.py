"""UI speed in real headless Chromium: first render of the topology page, click and pan/zoom response.

Figures are measured inside the page (`performance.now()` since navigation
start, after two animation frames so the canvas has painted), on synthetic
meshes of 1,000, 3,000 and 10,000 workloads (about 1.5 edges per workload; the
10,000 one also with 3 edges per workload, 30,000 edges, the issue's size).
Goals from issue #17 at 10,000 workloads: first view < 2 s, pan/zoom >= 30
frames/s (<= 33 ms a frame), click -> panel < 500 ms. The grouped page (as it opens) reports its gestures, then
a click on a namespace: its side panel (`click_panel`) and the namespace drawn opened in place (`open_group`;
at 10,000 workloads a namespace of 1,000 opened is past the canvas threshold, so the canvas takes the view over). Ratios compare against
the 1,000-workload figure of the same run, since the machine is shared.

Expanded graphs are measured twice on one page load order: drawn by Cytoscape (`?renderer=cytoscape`,
the page below its canvas threshold) and by the page's own canvas renderer (`?renderer=canvas`,
assets/big_graph.js, what the page uses above the threshold); each canvas figure carries its ratio to the
Cytoscape one of the same size in the same run (`topology_*_canvas_N ... x vs topology_*_N`).

`MESHSCOPE_BENCH_UI_SIZES=1000,3000` picks sizes; `MESHSCOPE_BENCH_UI_RUNS` the renders per size;
`MESHSCOPE_BENCH_UI_DENSE=2` the extra callers per workload of the largest size's second, dense mesh (2: ~34,000
edges at 10,000 workloads; 0: no dense mesh); `MESHSCOPE_BENCH_UI_RENDERERS=canvas` measures the expanded graphs
on the canvas only (of `cytoscape,canvas,grouped`; Cytoscape takes minutes a page at 10,000 workloads);
`MESHSCOPE_BENCH_UI_PHASE_S` bounds each step (a render, a click, a gesture): a step that does not
finish in time is reported as such and the bench goes on, so it completes on a loaded box.

Each page (a renderer at a size, the grouped view) is opened on a server started for it, so every first view is
a cold one. The server builds and lays out its first views in the background as it starts
(`dashboard.app.prepare`; the bench says whether the code it runs does), so besides the first view from navigation
the bench reports it from the server's start (`render_from_start`: a user opening the page the moment the server
is up; the page is opened right after the server starts).
"""
from __future__ import annotations

import os
import time

from bench.common import report

SIZES = tuple(int(s) for s in os.environ.get("MESHSCOPE_BENCH_UI_SIZES", "1000,3000,10000").split(","))
RUNS = int(os.environ.get("MESHSCOPE_BENCH_UI_RUNS", "2"))
PHASE_S = float(os.environ.get("MESHSCOPE_BENCH_UI_PHASE_S", "300"))
DENSE = int(os.environ.get("MESHSCOPE_BENCH_UI_DENSE", "2"))
RENDERERS = tuple(os.environ.get("MESHSCOPE_BENCH_UI_RENDERERS", "cytoscape,canvas,grouped").split(","))
FIND_CY = """const root = document.getElementById('topo-graph'); if (!root) return 0;
for (const e of [root, ...root.querySelectorAll('*')]) if (e._cyreg && e._cyreg.cy) { window._cy = e._cyreg.cy;
  return window._cy.nodes().length; }
return 0;"""
AFTER_PAINT = """const done = arguments[arguments.length - 1];
requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now())));"""


def _wait(fn, timeout: float = PHASE_S, interval: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("the page did not finish rendering in time")


CANVAS_DRAWN = """const b = window.meshscopeBig; if (!b) return 0; const s = b.stats();
return s.full > 0 && s.shown && window._paintedAt ? s.nodes : 0;"""
# installed in every page before its own scripts: notes when the canvas renderer's first drawing (its `firstAt`)
# has been painted, i.e. the frame after the one that drew it has begun; a WebDriver poll sees it later, after
# whatever the page does next (the idle hit-test grid), so the time is taken in the page
PAINT_WATCH = """(function () {
  const start = performance.now();
  const tick = () => {
    const b = window.meshscopeBig, s = b && b.stats();
    if (s && s.firstAt && s.shown) { requestAnimationFrame(() => { window._paintedAt = performance.now(); }); return; }
    if (performance.now() - start < 600000) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();"""
# where the canvas page's first view went: the answer carrying the page (the largest), the columns handed to the
# renderer, drawn, painted (ms since navigation start, noted by the page itself)
# the answer carrying the page is the Dash layout (the server renders the loading page into it) or, before that, the
# router callback's; `layout` is when the page asked for Dash's layout (its scripts have run by then)
CANVAS_TIMES = """const s = window.meshscopeBig.stats(), all = performance.getEntriesByType('resource');
const answer = all.filter(e => e.name.includes('_dash-update-component') || e.name.includes('_dash-layout'))
  .sort((a, b) => b.transferSize - a.transferSize)[0];
const layout = all.find(e => e.name.includes('_dash-layout'));
return {asked: answer ? answer.startTime : 0, answered: answer ? answer.responseEnd : 0, bytes: answer ? answer.transferSize : 0,
        what: answer ? answer.name.split('/').pop().split('?')[0] : '', layout: layout ? layout.startTime : 0,
        data: s.dataAt || 0, build: s.buildMs || 0, drawn: s.firstAt, painted: window._paintedAt};"""
ORIGIN = "return performance.timeOrigin;"


def _render_ms(driver, url: str, nodes: int | None, query: str = "?group=none",
               canvas: bool = False, started: float | None = None) -> tuple[float, float, float, float]:
    """(wall ms from navigation start to the first painted view, main-thread CPU ms spent by the page until
    every element is drawn, wall ms until every element is drawn, wall ms from `started` (epoch s: when the
    server was started, None: not asked) to the first painted view).

    The CPU figure (Chrome's ThreadTime) does not grow when other processes
    compete for the cores, so it is the one to compare between runs on a busy machine.
    `nodes` None: any non-empty graph counts (an aggregated first view).
    On the canvas the first view is when the page's first drawing has been painted (noted in the page by
    PAINT_WATCH), not when a WebDriver poll saw it: a poll waits for the page's main thread, which after the
    first view builds the hit-test grid in idle time, so that figure was late by whatever came next.
    """
    driver.get("about:blank")
    driver.get(url + "/topology" + query)
    _wait(lambda: (lambda c: c == nodes if nodes else c > 0)(driver.execute_script(CANVAS_DRAWN if canvas else FIND_CY)))
    wall = float(driver.execute_async_script(AFTER_PAINT))
    if canvas:
        t = driver.execute_script(CANVAS_TIMES)
        wall = float(t["painted"])
        print(f"#   first view: Dash layout asked {t['layout']:.0f} ms; the page's answer ({t['what']}) asked "
              f"{t['asked']:.0f} ms, answered {t['answered']:.0f} ms ({t['bytes'] / 1e6:.2f} MB), "
              f"columns in the renderer {t['data']:.0f} ms (built in {t['build']:.0f} ms), drawn {t['drawn']:.0f} ms, "
              f"painted {t['painted']:.0f} ms", flush=True)
    from_start = 0.0
    if started is not None:  # the page's clock origin is epoch ms: from the server's start to the first view
        from_start = float(driver.execute_script(ORIGIN)) + wall - started * 1000
        print(f"#   first view {wall:.0f} ms after navigation, {from_start:.0f} ms after the server was started",
              flush=True)
    if not canvas:  # then until the page paints again (work queued after the first view)
        _wait(lambda: not driver.execute_script("return window._cy.scratch('_meshscope_edges_pending')"))
    whole = float(driver.execute_async_script(AFTER_PAINT))
    metrics = {m["name"]: m["value"] for m in driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
    return wall, metrics.get("ThreadTime", 0.0) * 1000, whole, from_start


# a press and release on a node, timed from the press; each renderer's prefix zooms to 1x around the node and
# gives its screen position `p`, the element under it `canvas` and the graph's box
_CLICK_BODY = """const at = {clientX: box.left + p.x, clientY: box.top + p.y, bubbles: true, cancelable: true, view: window,
            button: 0, buttons: 1};
window._shownAt = null;  // when the title shows the clicked element: noted by the page as it happens
if (window._shownObserver) window._shownObserver.disconnect();
window._shownObserver = new MutationObserver(() => {
  const t = document.getElementById('panel-title');
  if (!window._shownAt && window._clickAt && t && t.textContent.endsWith(arguments[1])) window._shownAt = performance.now();
});
window._shownObserver.observe(document.getElementById('topo-panel'), {childList: true, subtree: true, characterData: true});
requestAnimationFrame(() => requestAnimationFrame(() => {
  window._clickAt = performance.now();
  canvas.dispatchEvent(new MouseEvent('mousedown', at));
  window.dispatchEvent(new MouseEvent('mouseup', Object.assign({}, at, {buttons: 0})));
}));"""
CLICK = """const cy = window._cy, n = cy.$id(arguments[0]);
cy.zoom(1); cy.center(n);
const p = n.renderedPosition(), box = cy.container().getBoundingClientRect();
const canvas = cy.container().querySelector('canvas:last-of-type') || cy.container();
""" + _CLICK_BODY
CANVAS_CLICK = """const b = window.meshscopeBig; b.zoomTo(1, arguments[0]);
const p = b.screenPosition(arguments[0]), canvas = document.querySelector('#topo-canvas canvas');
const box = canvas.getBoundingClientRect();
""" + _CLICK_BODY
SHOWN = """return window._shownAt ? window._shownAt - window._clickAt : null;"""


# a grouped page: a click on a namespace opens its side panel (`_click_ms`) and the namespace in place; this notes,
# in the page, when the opened view is drawn (more nodes on Cytoscape, or the canvas taking the view over)
OPEN_WATCH = """const before = window._cy.nodes().length;
window._openedAt = null;
const look = () => {
  const b = window.meshscopeBig, s = b && b.stats();
  if ((s && s.shown && s.full > 0 && s.nodes > before) || window._cy.nodes().length > before) {
    requestAnimationFrame(() => { window._openedAt = performance.now(); }); return; }
  requestAnimationFrame(look);
};
requestAnimationFrame(look);"""
OPENED = "return window._openedAt && window._clickAt ? window._openedAt - window._clickAt : null;"


def _open_group(driver, agg_id: str) -> dict[str, float]:
    """Click a namespace of the grouped view: ms to its side panel, and to the namespace drawn opened in place."""
    driver.execute_script(OPEN_WATCH)
    panel = _click_ms(driver, agg_id, suffix=agg_id.split(":")[-1])
    opened = float(_wait(lambda: driver.execute_script(OPENED), timeout=min(PHASE_S, 300), interval=0.05))
    return {"click_panel": panel, "open_group": opened}


def _click_ms(driver, node_id: str, canvas: bool = False, suffix: str | None = None) -> float:
    """Mouse press and release on a node -> the side panel shows that node (server callback + DOM update).

    The view is first zoomed to 1x around the node, as a user does before clicking in a big graph; the
    press is dispatched in the page (see `_gesture_frame_ms` for why not through CDP) and timed there, and
    so is the panel's arrival (a MutationObserver): the figure once was the time of the WebDriver poll that
    saw the panel, seconds late on a loaded box (a poll waits for chromedriver and the page).
    """
    driver.execute_script("const t = document.getElementById('panel-title'); if (t) t.textContent = '';"
                          "window._clickAt = 0;")
    driver.execute_script(CANVAS_CLICK if canvas else CLICK, node_id, suffix or node_id.split("/", 1)[1])
    return float(_wait(lambda: driver.execute_script(SHOWN), timeout=min(PHASE_S, 120), interval=0.02))


# one drag (pan) or wheel (zoom) gesture from a point of empty background, one event a frame, in three scripts so
# the page's CPU is read between them: the set-up (the renderer's prefix fits the graph, which draws it in full,
# and says where its canvas is, which points are free (a press on a node would drag the node, not the view) and
# how to read the viewport), the gesture's frames, and the release with the drawing it brings
_SETUP_BODY = """let x = box.width / 2, y = box.height / 2;
for (let i = 0; i < 400; i++) {
  const px = box.width * (0.2 + 0.6 * ((i * 0.618) % 1)), py = box.height * (0.2 + 0.6 * ((i * 0.382) % 1));
  if (free(px, py)) { x = px; y = py; break; }
}
window._gesture = {canvas, box, x, y, view, before: view()};
// the fit's drawing painted, then whatever the page still had to do (the side panel's charts after the click
// figure, the idle hit-test grid) done: the gesture's frames are the gesture's own
requestAnimationFrame(() => requestAnimationFrame(() => requestIdleCallback(() => done(true), {timeout: 3000})));"""
_AT = """const G = window._gesture;
const at = (dx, dy) => ({clientX: G.box.left + G.x + dx, clientY: G.box.top + G.y + dy, bubbles: true, cancelable: true,
                        view: window, button: 0, buttons: 1});
"""
GESTURE_MOVE = """const done = arguments[arguments.length - 1], kind = arguments[0], steps = arguments[1];
""" + _AT + """const frames = [];
let i = 0;
const step = (t) => {
  frames.push(t);
  if (i === steps + 1) { done(frames); return; }
  if (kind === 'pan') {
    if (i === 0) G.canvas.dispatchEvent(new MouseEvent('mousedown', at(0, 0)));
    else window.dispatchEvent(new MouseEvent('mousemove', at(6 * i, 3 * i)));
  } else {
    G.canvas.dispatchEvent(new WheelEvent('wheel', Object.assign(at(0, 0), {deltaX: 0, deltaY: -40, deltaMode: 0})));
  }
  i++;
  requestAnimationFrame(step);
};
requestAnimationFrame(step);"""
GESTURE_RELEASE = """const done = arguments[arguments.length - 1], kind = arguments[0], steps = arguments[1];
""" + _AT + """const t0 = performance.now();
if (kind === 'pan') window.dispatchEvent(new MouseEvent('mouseup', at(6 * steps, 3 * steps)));
// a wheel gesture ends by itself (the canvas: 120 ms after the last wheel event): wait for that drawing too
const big = window.meshscopeBig && window.meshscopeBig.stats().shown ? window.meshscopeBig : null;
const full = big && big.stats().full, until = t0 + (kind === 'pan' || !big ? 0 : 400);
const wait = () => requestAnimationFrame((t1) => {
  if (t1 < until && !(big && big.stats().full > full)) { wait(); return; }
  requestAnimationFrame((t2) => { const now = G.view();
    done({ms: t2 - t0, moved: kind === 'pan' ? now.x !== G.before.x : now.zoom !== G.before.zoom}); });
});
wait();"""

GESTURE_SETUP = """const done = arguments[arguments.length - 1];
const cy = window._cy; cy.fit(undefined, 30);
const canvas = cy.container().querySelector('canvas:last-of-type') || cy.container();
const box = cy.container().getBoundingClientRect();
const bbs = cy.nodes().map(n => n.renderedBoundingBox());
const free = (px, py) => !bbs.some(b => px >= b.x1 - 4 && px <= b.x2 + 4 && py >= b.y1 - 4 && py <= b.y2 + 4);
const view = () => ({x: cy.pan().x, zoom: cy.zoom()});  // cy.pan() is the live object: copy what is compared
""" + _SETUP_BODY

# the same gesture on the canvas renderer
CANVAS_SETUP = """const done = arguments[arguments.length - 1];
const big = window.meshscopeBig; big.fit();
const canvas = document.querySelector('#topo-canvas canvas'), box = canvas.getBoundingClientRect();
const free = (px, py) => !big.hitAt(px, py);
const view = () => big.viewport();
""" + _SETUP_BODY


def _thread_ms(driver) -> float:
    """The page's main-thread CPU so far (Chrome's ThreadTime): it does not grow while other processes hold the cores."""
    return {m["name"]: m["value"] for m in driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}.get(
        "ThreadTime", 0.0) * 1000


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _gesture_frame_ms(driver, kind: str, steps: int = 24, canvas: bool = False) -> dict[str, float]:
    """The frames of a mouse drag (pan) or wheel (zoom) on the graph, one event a frame, apart from its release.

    The events are dispatched in the page, one per animation frame as a pointer delivers them, on the
    graph's canvas (pan: from a point of empty background), so Cytoscape runs its own gesture handling
    (texture-on-viewport, edges hidden while moving). Chrome's input pipeline (CDP Input.dispatchMouseEvent)
    was the first way: it waits for the page to acknowledge every event, and a busy page held the bench for
    many minutes on a loaded box; a script is bounded by its timeout. Starts from the whole graph in view.

    Returns `frame` and `frame_p95`: the 50th and 95th percentile of the time between the animation frames
    painted while the pointer moves (what the user sees as frames/s; 16.7 ms is 60 frames/s); `frame_cpu`: the
    page's main-thread CPU a gesture frame (comparable across runs on a shared box, where wall time is mostly
    waiting for a core); `release` / `release_cpu`: from the release to the frame after the full drawing the
    renderer does then, wall and CPU. The frame figures once spread the fit's drawing before the gesture and
    the release's after it over the gesture's frames; each is now measured on its own.
    """
    driver.execute_async_script(CANVAS_SETUP if canvas else GESTURE_SETUP)
    before = _thread_ms(driver)
    frames = driver.execute_async_script(GESTURE_MOVE, kind, steps)
    moving = _thread_ms(driver)
    out = driver.execute_async_script(GESTURE_RELEASE, kind, steps)
    released = _thread_ms(driver)
    if not out["moved"]:
        raise RuntimeError(f"the {kind} gesture did not move the view")
    # frames[0] pressed (or wheeled first); a renderer draws a move in the frame after the event's
    deltas = [b - a for a, b in zip(frames[1:], frames[2:])]
    return {"frame": _pct(deltas, 0.5), "frame_p95": _pct(deltas, 0.95),
            "frame_cpu": (moving - before) / max(1, len(frames) - 1),
            "release": out["ms"], "release_cpu": released - moving}


def _plain_renderer(driver, plain: bool) -> bool:
    """Switch the large-graph renderer options off (plain Cytoscape) or back on, to compare in one run."""
    driver.execute_script(f"""const r = window._cy.renderer(); const big = window._cy.scratch('_meshscope_large');
        r.textureOnViewport = {str(not plain).lower()} && !!big; r.hideEdgesOnViewport = {str(not plain).lower()} && !!big;""")
    return True


def _step(label: str, fn, *args):
    """fn(*args), or None with a line saying why when it did not finish in PHASE_S (the bench goes on)."""
    t0 = time.monotonic()
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - a timed-out or failed step is a figure too
        print(f"# {label}: not measured after {time.monotonic() - t0:.0f}s ({type(exc).__name__}: "
              f"{str(exc).splitlines()[0][:160] if str(exc) else ''})", flush=True)
        return None


def _measure(driver, url: str, n: int, label: str, nodes: int | None, base: dict[str, float],
             renderer: str | None = None, against: dict[str, float] | None = None,
             started: float | None = None) -> dict[str, float]:
    """Figures of one page; `renderer` canvas/cytoscape forces one (expanded only). Canvas figures are
    reported against `against` (the Cytoscape figures of the same size, same run), the others against 1,000.
    `started`: when the (fresh) server was started, epoch s; the first render also reports its first view from
    then (`render_from_start`): a user opening the page the moment the server is up."""
    t0 = time.monotonic()
    canvas = renderer == "canvas"
    query = "" if not nodes else "?group=none" + (f"&renderer={renderer}" if renderer else "")
    runs = [r for r in (_step(f"{label} render", _render_ms, driver, url, nodes, query, canvas,
                              started if i == 0 else None) for i in range(RUNS)) if r]
    if not runs:
        return {}  # the page did not render: nothing else to time on it
    # best of RUNS: the machine is shared, and the least disturbed run is the page's own cost
    figures = {"render": min(r[0] for r in runs), "render_cpu": min(r[1] for r in runs),
               "render_all": min(r[2] for r in runs)}
    if started is not None and runs[0][3]:
        figures["render_from_start"] = runs[0][3]
    if nodes:
        for i in (n // 2, n // 3):
            value = _step(f"{label} click_panel", _click_ms, driver, f"wl:ns-{i % 10}/svc-{i}-v1", canvas)
            if value is not None:
                figures["click_panel"] = min(value, figures.get("click_panel", value))
    # the Cytoscape renderer options on, then off on the same page (the canvas has no such options)
    for suffix, plain in (("", False),) if canvas else (("", False), ("_plain", True)):
        if not canvas and _step(f"{label} renderer options {'off' if plain else 'on'}", _plain_renderer, driver,
                                plain) is None:
            break
        for kind in ("pan", "zoom"):
            value = _step(f"{label} {kind}_frame{suffix}", _gesture_frame_ms, driver, kind, 24, canvas)
            if value is not None and (not plain or f"{kind}_frame" in figures):
                figures.update({f"{kind}_{what}{suffix}": v for what, v in value.items()})
    if not canvas:
        _step(f"{label} renderer options on", _plain_renderer, driver, False)
    if not nodes:  # grouped: after its gestures, a click on a namespace (its panel, and the namespace opened)
        opened = _step(f"{label} open a namespace", _open_group, driver, f"agg:ns:ns-{n % 7}")
        figures.update(opened or {})
    print(f"# {label}: measured in {time.monotonic() - t0:.0f}s, load average {os.getloadavg()[0]:.1f}", flush=True)
    for what, value in figures.items():
        suffix = "_grouped" if label.endswith("_grouped") else ""
        name, first = f"topology_{what}_{label}", f"topology_{what}_{SIZES[0]}{suffix}"
        if canvas and against:  # against Cytoscape at the same size, same run
            plain_label = label.replace("canvas_", "")
            report(name, value, "ms", baseline=(f"topology_{what}_{plain_label}", against.get(what, 0.0)))
            continue
        if canvas:  # Cytoscape not measured (MESHSCOPE_BENCH_UI_RENDERERS): against the canvas at the first size
            first = f"topology_{what}_canvas_{SIZES[0]}"
        if n == SIZES[0]:
            base[what] = value
        if what.endswith("_plain"):  # same page, same moment: the options' own effect
            tuned = f"topology_{what.removesuffix('_plain')}_{label}"
            report(name, value, "ms", baseline=(tuned, figures[what.removesuffix("_plain")]))
        else:
            report(name, value, "ms", baseline=(first, base[what]) if n != SIZES[0] and what in base else None)
    return figures


def _payload(snapshot: dict, label: str) -> None:
    """Bytes of graph elements the page ships: lean (what it sends) vs with every field (what it sent before #17)."""
    import json

    from dashboard.components.graph_style import edge_label_data
    from dashboard.components.lean import lean
    from dashboard.components.positions import PositionMemory
    from dashboard.snapshot_source import SnapshotSource

    full = edge_label_data(PositionMemory().place("workload", SnapshotSource(snapshot).graph("workload").elements))
    edges = sum("source" in e["data"] for e in full)
    print(f"# {label}: {len(full) - edges} nodes, {edges} edges", flush=True)
    report(f"topology_payload_{label}", len(json.dumps(lean(full))) / 1e6, "MB",
           baseline=(f"topology_payload_full_{label}", len(json.dumps(full)) / 1e6))
    from dashboard.components.graph_canvas import payload
    report(f"topology_payload_canvas_{label}", len(json.dumps(payload(full))) / 1e6, "MB",
           baseline=(f"topology_payload_{label}", len(json.dumps(lean(full))) / 1e6))


def _server_cold(snapshot: dict, label: str) -> None:
    """The server's CPU for a cold first page load of the expanded graph, in this process (comparable on a busy
    box): what the page's request costs, and the preparation at start that the code may do before it."""
    import json

    import dashboard.app
    from dashboard.snapshot_source import SnapshotSource

    app = dashboard.app.create_app(SnapshotSource(snapshot))
    client = app.server.test_client()
    client.get("/")  # Dash's own first-request set-up, not the page's
    search = "?group=none&renderer=canvas"
    prepared = 0.0
    t0 = time.process_time()
    if hasattr(dashboard.app, "prepare"):
        dashboard.app.prepare(app)
        prepared = time.process_time() - t0
        t0 = time.process_time()
        answer = client.get("/_dash-layout", headers={"Referer": f"http://localhost/topology{search}"})
    else:  # the page's content came from the router callback
        body = {"output": "..page.children...nav.children..",
                "outputs": [{"id": "page", "property": "children"}, {"id": "nav", "property": "children"}],
                "inputs": [{"id": "url", "property": "pathname", "value": "/topology"},
                           {"id": "url", "property": "search", "value": search}], "changedPropIds": ["url.pathname"]}
        answer = client.post("/_dash-update-component", data=json.dumps(body),
                             headers={"Content-Type": "application/json", "X-Meshscope-CSRF": "1"})
    request = time.process_time() - t0
    assert answer.status_code == 200 and b"topo-big" in answer.data, answer.status_code
    report(f"topology_server_cold_request_cpu_{label}", request * 1000, "ms")
    report(f"topology_server_cold_prepare_cpu_{label}", prepared * 1000, "ms")


def main() -> None:
    from dashboard.sample import synthetic_snapshot
    from dashboard.server import start
    from dashboard.snapshot_source import SnapshotSource
    from tests.fixtures.browser import make_driver

    print(f"# load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    driver = make_driver((1440, 900))
    driver.set_script_timeout(PHASE_S)
    driver.set_page_load_timeout(PHASE_S)
    # every WebDriver command waits for the page's main thread; mounting 10,000 workloads is one long task
    # that outlasted selenium's 120 s HTTP read timeout on a loaded box (a poll then failed the render)
    driver.command_executor._client_config.timeout = PHASE_S + 60
    driver.execute_cdp_cmd("Performance.enable", {})
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PAINT_WATCH})
    base: dict[str, float] = {}
    base_grouped: dict[str, float] = {}
    base_canvas: dict[str, float] = {}
    import dashboard.app
    prepares = hasattr(dashboard.app, "prepare")
    print("# each page below is opened on a freshly started server (cold: nothing built or laid out); "
          + ("the server builds and lays out its first views in the background as it starts (dashboard.app.prepare), "
             "so the first view is also reported from the server's start (render_from_start)" if prepares else
             "this server builds on the first request"), flush=True)
    try:
        warm = start(SnapshotSource(synthetic_snapshot(50)), port=0)
        _render_ms(driver, warm.url, 50)  # browser cache warm for the bundles, as for a returning user
        warm.stop()
        for n in SIZES:
            # the largest size twice: ~1.5 edges per workload, then ~3.5 (35,000 edges: the 30,000 and more)
            dense = [(DENSE, f"{n}_dense")] if DENSE and n == SIZES[-1] and n >= 10_000 else []
            for extra, label in ((0, f"{n}"), *dense):
                snapshot = synthetic_snapshot(n, extra_callers=extra)
                _payload(snapshot, label)
                _server_cold(snapshot, label)
                old: dict[str, float] = {}
                for what in ("cytoscape", "canvas", "grouped"):
                    if what not in RENDERERS or (what == "grouped" and extra):
                        continue
                    started = time.time()  # a fresh server per page: every first view is a cold one
                    ui = start(SnapshotSource(snapshot), port=0)
                    try:
                        if what == "cytoscape":
                            old = _measure(driver, ui.url, n, label, n, base, "cytoscape", started=started)
                        elif what == "canvas":
                            _measure(driver, ui.url, n, f"canvas_{label}", n, base_canvas, "canvas", old, started=started)
                        else:
                            _measure(driver, ui.url, n, f"{n}_grouped", None, base_grouped, started=started)
                    finally:
                        ui.stop()
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
