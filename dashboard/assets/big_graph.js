/* meshscope topology page: our own Canvas 2D renderer for big expanded graphs (issue #17).
 *
 * Cytoscape styles and hit-tests every element: at 10,000 workloads / 30,000 edges its first view took
 * ~30 s, a pan frame ~220 ms and a click ~2.8 s (docs/ui.md). Above a size threshold the server hands the
 * same lean elements (with their cached server-side positions) to the `topo-big` store instead of the
 * Cytoscape component, and this file draws them:
 * - one path per edge style (colour, width, dash) and one per node fill: no per-element style resolution;
 *   labels and arrows only once the zoom makes them legible (level of detail), culled to the viewport;
 * - a pan or zoom draws the last full frame's bitmap transformed (one drawImage a frame), and the full
 *   drawing returns when the gesture ends: a frame costs the same at 100 or 100,000 elements;
 * - a uniform grid over node positions and edge segments, built once per layout, finds what a click or a
 *   hover hits by looking at a few cells; a click sets the Cytoscape component's own `tapNodeData` /
 *   `tapEdgeData` (dash_clientside.set_props), so the side panel and the incident links work unchanged;
 * - a refresh with the same node positions keeps the grid and the viewport (colours and rates redraw).
 * Find / hide / highlight come as id lists the server computes with the same clauses the browser's
 * selectors use (`topo-big-marks`), the clicked element as `topo-selected`.
 */
(function () {
  "use strict";
  var NODE_SIZE = 30, AGG_SIZE = 46, LABEL_PX = 10, NODE_FONT = 11, EDGE_FONT = 9, MIN_PX = 0.7;
  var MIN_ZOOM = 0.005, MAX_ZOOM = 3, SETTLE_MS = 120;
  var SHAPES = {workload: 0, app: 1, service: 2, serviceentry: 3, aggregate: 4, unknown: 5, config: 1};
  var LABEL_KEYS = {rps: "rps", err: "err", p95: "p95"};  // toggle value -> edge column

  var S = {host: null, canvas: null, buf: null, dpr: 1, w: 0, h: 0, tx: 0, ty: 0, scale: 1, fitted: false,
           g: null, marks: {found: {}, hidden: {}}, highlight: {}, selected: null, labels: [], marksKey: "[[],[],[],[]]",
           cache: null, gesture: false, settle: null, raf: 0, drag: null, hoverRaf: 0,
           stats: {full: 0, fast: 0, lastFullMs: 0, firstAt: 0, dataAt: 0, partial: 0, buildMs: 0, builtGrid: 0,
                   builtEdgeGrid: 0, deferred: 0, handoffs: 0}};

  /* ---------- elements -> typed arrays and style groups ---------- */

  function has(cls, c) { return cls.indexOf(" " + c + " ") >= 0; }

  function nodeStyle(cls, d, colors) {
    var fill = colors.healthy, alpha = 1, ring = null;
    if (has(cls, "unknown")) fill = "#6b7280";
    if (has(cls, "health-degraded")) fill = colors.degraded;
    else if (has(cls, "health-failing")) fill = colors.failing;
    else if (has(cls, "health-idle") || has(cls, "health-na")) fill = colors.idle;
    if (has(cls, "config")) fill = "#4b5563";
    if (d.outsider) alpha = 0.55;
    if (has(cls, "badge-vs") || has(cls, "badge-dr") || has(cls, "badge-cb")) ring = "#1f2937";
    if (has(cls, "badge-canary-rollback")) ring = colors.failing;
    if (has(cls, "badge-canary-promote")) ring = colors.healthy;
    if (has(cls, "diff-appeared")) ring = "#16a34a";
    if (has(cls, "diff-vanished")) { fill = "#e5e7eb"; alpha = 0.55; ring = "#9ca3af"; }
    return {fill: fill, alpha: alpha, ring: ring};
  }

  function edgeStyle(cls, colors) {
    var color = colors.healthy, width = 1, dash = 0, alpha = 1;
    if (has(cls, "health-degraded")) color = colors.degraded;
    else if (has(cls, "health-failing")) { color = colors.failing; width = 3; }
    else if (has(cls, "health-idle") || has(cls, "health-na")) color = colors.idle;
    if (has(cls, "proto-tcp")) color = colors.tcp;
    if (has(cls, "mtls-mismatch")) dash = 1;
    if (has(cls, "cb-tripped")) { width = 4; dash = 2; }
    if (has(cls, "proto-blames")) { color = "#4b5563"; width = 1.5; dash = 2; }
    if (has(cls, "diff-appeared")) { color = "#16a34a"; width = 4; }
    if (has(cls, "diff-vanished")) { color = "#9ca3af"; dash = 1; alpha = 0.55; }
    if (has(cls, "diff-worse")) { color = "#dc2626"; width = 4; }
    if (has(cls, "diff-better")) { color = "#2563eb"; width = 4; }
    return {color: color, width: width, dash: dash, alpha: alpha};
  }

  function groupIndex(groups, byKey, style) {
    var key = JSON.stringify(style);
    if (!(key in byKey)) { byKey[key] = groups.length; groups.push(style); }
    return byKey[key];
  }

  /* ---------- columns (graph_canvas.payload): typed-array bytes in base64, repeating strings as codes ---------- */

  var TYPED = {f8: Float64Array, i4: Int32Array, u2: Uint16Array, u1: Uint8Array};

  function bytesOf(b64) {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(b64);
    var text = atob(b64), out = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    return out;
  }

  /* a column as an array (typed for numbers): one view over the decoded bytes, or the codes looked up */
  function column(col) {
    if (!col || Array.isArray(col)) return col || [];
    if (col.dict) {
      var codes = column(col.codes), words = col.dict, out = new Array(codes.length);
      for (var i = 0; i < codes.length; i++) out[i] = words[codes[i]];
      return out;
    }
    var T = TYPED[col.dtype], bytes = bytesOf(col.b64);
    return new T(bytes.buffer, bytes.byteOffset, bytes.byteLength / T.BYTES_PER_ELEMENT);
  }

  /* the edge label columns, decoded the first time labels are drawn (34,000 strings each, rarely shown) */
  function edgeLabels(g) {
    if (!g.elabels) {
      var E = g.E;
      g.elabels = {rps: column(E.rps), err: column(E.err), p95: column(E.p95), lock: column(E.lock)};
    }
    return g.elabels;
  }

  /* the `topo-big` store's columns -> typed arrays; one style group per distinct class string */
  function build(payload, old) {
    var P = payload.nodes, E = payload.edges, colors = payload.colors || {}, classes = payload.classes || [];
    var N = {id: column(P.id), name: column(P.name), label: column(P.label), namespace: column(P.namespace),
             type: column(P.type), found_label: P.found_label || {}};
    var ncls = column(P.cls), ecls = column(E.cls), xs = column(P.x), ys = column(P.y);
    var n = N.id.length, eid = column(E.id), m = eid.length, i;
    var g = {n: n, m: m, x: Float64Array.from(xs), y: Float64Array.from(ys), r: new Float32Array(n),
             shape: new Uint8Array(n), ngroup: new Uint16Array(n), N: N, E: E, eid: eid, index: new Map(), nodeGroups: [],
             src: Int32Array.from(column(E.s)), tgt: Int32Array.from(column(E.t)), egroup: new Uint16Array(m), eindex: null,
             edgeGroups: [], colors: colors, outsider: new Uint8Array(n)};
    (P.outsider || []).forEach(function (k) { g.outsider[k] = 1; });
    var nKeys = {}, eKeys = {}, nodeOf = {}, edgeOf = {};
    for (i = 0; i < n; i++) {
      var c = ncls[i], key = c * 2 + g.outsider[i];
      if (!(key in nodeOf)) {
        nodeOf[key] = groupIndex(g.nodeGroups, nKeys, nodeStyle(" " + classes[c] + " ", {outsider: g.outsider[i]}, colors));
      }
      g.ngroup[i] = nodeOf[key];
      g.shape[i] = SHAPES[N.type[i]] || 0;
      g.r[i] = (N.type[i] === "aggregate" ? AGG_SIZE : NODE_SIZE) / 2;
      g.index.set(N.id[i], i);
    }
    for (i = 0; i < m; i++) {
      c = ecls[i];
      if (!(c in edgeOf)) edgeOf[c] = groupIndex(g.edgeGroups, eKeys, edgeStyle(" " + classes[c] + " ", colors));
      g.egroup[i] = edgeOf[c];
    }
    // the grid depends on positions only: a refresh that moved nothing keeps it (with its edge buckets, if made);
    // a new one is made after the first view is on screen (idle time) or by the first hit test, whichever comes first
    g.layoutKey = layoutKey(g);
    g.grid = old && old.grid && old.layoutKey === g.layoutKey && old.n === n && old.m === m && sameEnds(old, g)
      ? old.grid : null;
    return g;
  }

  /* an edge's id: the server sends null for `source->target` (nearly every edge; 1.5 of 4.4 MB at 34,000 edges) */
  function edgeId(g, i) {
    if (g.eids) return g.eids[i];
    var id = g.eid[i];
    return id === null || id === undefined ? g.N.id[g.src[i]] + "->" + g.N.id[g.tgt[i]] : id;
  }

  /* id -> edge index, made the first time an edge is looked up by id (a mark, the selection), not on load */
  function edgeIndex(g) {
    if (!g.eindex) {
      var ids = new Array(g.m);
      g.eindex = new Map();
      for (var i = 0; i < g.m; i++) { ids[i] = edgeId(g, i); g.eindex.set(ids[i], i); }
      g.eids = ids;  // from now on edgeId reads them (hide tests every edge's id each drawing)
    }
    return g.eindex;
  }

  function nodeData(g, i) {  // what a click hands the side panel callback (it looks the rest up by id)
    return {id: g.N.id[i], name: g.N.name[i], namespace: g.N.namespace[i], type: g.N.type[i],
            label: g.N.label[i] || g.N.name[i]};
  }

  function edgeData(g, i) {
    return {id: edgeId(g, i), source: g.N.id[g.src[i]], target: g.N.id[g.tgt[i]]};
  }

  function layoutKey(g) {
    var h = g.n * 31 + g.m;
    for (var i = 0; i < g.n; i++) h = (h * 33 + g.x[i] * 7 + g.y[i] * 13) % 2147483647;
    return h;
  }

  function sameEnds(a, b) {
    for (var i = 0; i < b.m; i++) if (a.src[i] !== b.src[i] || a.tgt[i] !== b.tgt[i]) return false;
    return true;
  }

  /* ---------- uniform grid over nodes and edge segments ---------- */

  function gridOf(g) {
    if (!g.grid) g.grid = buildGrid(g);
    return g.grid;
  }

  function buildGrid(g) {
    S.stats.builtGrid++;
    var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity, i;
    for (i = 0; i < g.n; i++) {
      if (g.x[i] < x0) x0 = g.x[i]; if (g.x[i] > x1) x1 = g.x[i];
      if (g.y[i] < y0) y0 = g.y[i]; if (g.y[i] > y1) y1 = g.y[i];
    }
    if (!g.n) { x0 = y0 = 0; x1 = y1 = 1; }
    x0 -= AGG_SIZE; y0 -= AGG_SIZE; x1 += AGG_SIZE; y1 += AGG_SIZE;
    var area = (x1 - x0) * (y1 - y0), total = 0;
    for (i = 0; i < g.m; i++) {
      var dx = g.x[g.tgt[i]] - g.x[g.src[i]], dy = g.y[g.tgt[i]] - g.y[g.src[i]];
      total += Math.sqrt(dx * dx + dy * dy);
    }
    // about two nodes a cell, but cells big enough that an edge crosses ~8 of them on average (bounded memory)
    var cell = Math.max(AGG_SIZE, Math.sqrt(area / Math.max(1, g.n / 2)), total / Math.max(1, 8 * g.m));
    var cols = Math.max(1, Math.ceil((x1 - x0) / cell)), rows = Math.max(1, Math.ceil((y1 - y0) / cell));
    var grid = {x0: x0, y0: y0, cell: cell, cols: cols, rows: rows, edges: null};
    var cells = new Int32Array(g.n);
    for (i = 0; i < g.n; i++) cells[i] = cellOf(grid, g.x[i], g.y[i]);
    grid.nodes = bucket(cols * rows, cells);
    return grid;
  }

  /* the edge segments' buckets: made after the first view is on screen (idle time) or at the first hit test that
   * needs them, whichever comes first; one walk along each edge into flat (cell, edge) pairs, then a counting sort */
  function edgeGrid(g) {
    var grid = gridOf(g);
    if (grid.edges) return grid.edges;
    var cells = grid.cols * grid.rows, half = grid.cell / 2, cap = Math.max(16, g.m * 4), n = 0, i;
    var pc = new Int32Array(cap), pe = new Int32Array(cap), x0 = grid.x0, y0 = grid.y0, size = grid.cell;
    var cmax = grid.cols - 1, rmax = grid.rows - 1;
    for (i = 0; i < g.m; i++) {
      var ax = g.x[g.src[i]], ay = g.y[g.src[i]], dx = g.x[g.tgt[i]] - ax, dy = g.y[g.tgt[i]] - ay;
      var steps = Math.ceil(Math.sqrt(dx * dx + dy * dy) / half) || 1, last = -1;
      for (var s = 0; s <= steps; s++) {
        var cx = Math.floor((ax + dx * s / steps - x0) / size), cy = Math.floor((ay + dy * s / steps - y0) / size);
        var c = (cy < 0 ? 0 : cy > rmax ? rmax : cy) * grid.cols + (cx < 0 ? 0 : cx > cmax ? cmax : cx);
        if (c === last) continue;
        last = c;
        if (n === cap) {
          cap *= 2;
          var pc2 = new Int32Array(cap), pe2 = new Int32Array(cap);
          pc2.set(pc); pe2.set(pe); pc = pc2; pe = pe2;
        }
        pc[n] = c; pe[n] = i; n++;
      }
    }
    var start = new Int32Array(cells + 1);
    for (i = 0; i < n; i++) start[pc[i] + 1]++;
    for (i = 0; i < cells; i++) start[i + 1] += start[i];
    var fill = start.slice(0, cells), items = new Int32Array(n);
    for (i = 0; i < n; i++) items[fill[pc[i]]++] = pe[i];
    grid.edges = {start: start, items: items};
    S.stats.builtEdgeGrid++;
    return grid.edges;
  }

  function edgeGridSoon() {  // off the first view's path, before the user's first click in all likelihood
    var g = S.g;
    if (!g || (g.grid && g.grid.edges)) return;
    var run = function () {
      if (S.g !== g) return;
      if (inGesture()) { setTimeout(edgeGridSoon, SETTLE_MS); return; }  // never inside a gesture's frames
      edgeGrid(g);
    };
    if (window.requestIdleCallback) window.requestIdleCallback(run, {timeout: 1000}); else setTimeout(run, 50);
  }

  function cellOf(grid, x, y) {
    var cx = Math.min(grid.cols - 1, Math.max(0, Math.floor((x - grid.x0) / grid.cell)));
    var cy = Math.min(grid.rows - 1, Math.max(0, Math.floor((y - grid.y0) / grid.cell)));
    return cy * grid.cols + cx;
  }

  /* compressed buckets: start offsets per cell, item ids in one Int32Array (a counting sort, no array per cell) */
  function bucket(count, cellOfItem) {
    var start = new Int32Array(count + 1), n = cellOfItem.length, i;
    for (i = 0; i < n; i++) start[cellOfItem[i] + 1]++;
    for (i = 0; i < count; i++) start[i + 1] += start[i];
    var fill = start.slice(0, count), items = new Int32Array(n);
    for (i = 0; i < n; i++) items[fill[cellOfItem[i]]++] = i;
    return {start: start, items: items};
  }

  /* what is under a screen point: {kind, i} or null; nodes first (they are drawn over edges) */
  function hit(px, py) {
    var g = S.g;
    if (!g) return null;
    var x = (px - S.tx) / S.scale, y = (py - S.ty) / S.scale, grid = gridOf(g);
    var tol = 4 / S.scale, ring = Math.max(1, Math.ceil(tol / grid.cell));
    var cx = Math.floor((x - grid.x0) / grid.cell), cy = Math.floor((y - grid.y0) / grid.cell);
    var best = null, bestD = Infinity, hidden = S.marks.hidden;
    forCells(grid.nodes, grid, cx, cy, ring, function (i) {
      if (hidden[g.N.id[i]]) return;
      var d = Math.hypot(g.x[i] - x, g.y[i] - y), reach = Math.max(g.r[i], MIN_PX * 3 / S.scale) + tol;
      if (d <= reach && d < bestD) { bestD = d; best = {kind: "node", i: i}; }
    });
    if (best) return best;
    forCells(edgeGrid(g), grid, cx, cy, ring, function (i) {
      if (edgeHidden(i)) return;
      var ax = g.x[g.src[i]], ay = g.y[g.src[i]], bx = g.x[g.tgt[i]], by = g.y[g.tgt[i]];
      var dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy || 1;
      var t = Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / len2));
      var d = Math.hypot(ax + t * dx - x, ay + t * dy - y);
      var reach = Math.max(g.edgeGroups[g.egroup[i]].width / 2, MIN_PX / S.scale) + tol;
      if (d <= reach && d < bestD) { bestD = d; best = {kind: "edge", i: i}; }
    });
    return best;
  }

  function forCells(b, grid, cx, cy, ring, fn) {
    for (var yy = Math.max(0, cy - ring); yy <= Math.min(grid.rows - 1, cy + ring); yy++) {
      for (var xx = Math.max(0, cx - ring); xx <= Math.min(grid.cols - 1, cx + ring); xx++) {
        var c = yy * grid.cols + xx;
        for (var k = b.start[c]; k < b.start[c + 1]; k++) fn(b.items[k]);
      }
    }
  }

  function edgeHidden(i) {
    var g = S.g, h = S.marks.hidden;
    return h[edgeId(g, i)] || h[g.N.id[g.src[i]]] || h[g.N.id[g.tgt[i]]];
  }

  /* ---------- drawing ---------- */

  function shapePath(ctx, shape, x, y, r) {
    if (shape === 0) { ctx.moveTo(x + r, y); ctx.arc(x, y, r, 0, 6.283185307179586); return; }
    if (shape === 1) { ctx.rect(x - r, y - r * 0.8, 2 * r, 1.6 * r); return; }
    if (shape === 2) { ctx.moveTo(x, y - r); ctx.lineTo(x + r, y); ctx.lineTo(x, y + r); ctx.lineTo(x - r, y); }
    else if (shape === 3) { ctx.moveTo(x - r * 0.6, y - r * 0.7); ctx.lineTo(x + r, y - r * 0.7);
      ctx.lineTo(x + r * 0.6, y + r * 0.7); ctx.lineTo(x - r, y + r * 0.7); }
    else if (shape === 4) { for (var a = 0; a < 6; a++) { var t = Math.PI / 3 * a;
      ctx[a ? "lineTo" : "moveTo"](x + r * Math.cos(t), y + r * Math.sin(t)); } }
    else { ctx.moveTo(x, y - r); ctx.lineTo(x + r, y + r * 0.8); ctx.lineTo(x - r, y + r * 0.8); }
    ctx.closePath();
  }

  function visibleBox(margin) {
    return {x0: (-S.tx) / S.scale - margin, y0: (-S.ty) / S.scale - margin,
            x1: (S.w - S.tx) / S.scale + margin, y1: (S.h - S.ty) / S.scale + margin};
  }

  function drawFull() {
    var t0 = performance.now(), cw = S.host.clientWidth, ch = S.host.clientHeight;
    if (cw && (Math.abs(cw - S.w) >= 1 || Math.abs(ch - S.h) >= 1)) resize();  // a resize the observer missed
    var g = S.g, ctx = S.buf.getContext("2d"), view = S.canvas.getContext("2d");
    var W = S.buf.width, H = S.buf.height, k = S.scale, shift = panShift(W, H);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    if (shift) {  // the last drawing moved by the pan (through the view canvas), then the uncovered strips drawn
      view.setTransform(1, 0, 0, 1, 0, 0);
      view.clearRect(0, 0, W, H);
      view.drawImage(S.buf, shift.dx, shift.dy);
      ctx.clearRect(0, 0, W, H);
      ctx.drawImage(S.canvas, 0, 0);
      var margin = AGG_SIZE + 12 / k;  // halos and minimum-size marks of elements just outside a strip reach into it
      uncovered(shift.dx, shift.dy, W, H).forEach(function (rc) {
        ctx.save();
        ctx.beginPath();
        ctx.rect(rc[0], rc[1], rc[2], rc[3]);
        ctx.clip();
        ctx.setTransform(S.dpr * k, 0, 0, S.dpr * k, S.dpr * S.tx, S.dpr * S.ty);
        paint(ctx, g, k, {x0: (rc[0] / S.dpr - S.tx) / k - margin, y0: (rc[1] / S.dpr - S.ty) / k - margin,
                          x1: ((rc[0] + rc[2]) / S.dpr - S.tx) / k + margin, y1: ((rc[1] + rc[3]) / S.dpr - S.ty) / k + margin});
        ctx.restore();
      });
      S.stats.partial++;
    } else {
      ctx.clearRect(0, 0, W, H);
      if (g) {
        ctx.setTransform(S.dpr * k, 0, 0, S.dpr * k, S.dpr * S.tx, S.dpr * S.ty);
        paint(ctx, g, k, visibleBox(AGG_SIZE));
      }
    }
    view.setTransform(1, 0, 0, 1, 0, 0);
    view.clearRect(0, 0, S.canvas.width, S.canvas.height);
    view.drawImage(S.buf, 0, 0);
    S.cache = {tx: S.tx, ty: S.ty, scale: S.scale, g: g, marks: S.marksKey, selected: S.selected, W: W, H: H,
               labels: labelsAt(k)};
    S.stats.full++;
    S.stats.lastFullMs = performance.now() - t0;
    if (!S.stats.firstAt && g && g.n) S.stats.firstAt = performance.now();
    if (g && !(g.grid && g.grid.edges) && !g.edgeGridQueued) { g.edgeGridQueued = true; edgeGridSoon(); }
  }

  /* After a pan (same zoom, by whole device pixels, no label at this zoom, nothing else changed) the last drawing
   * is still right where it overlaps the new view: {dx, dy} to move it by, else null (a drawing in full). At
   * 34,000 edges a full drawing of the whole mesh is 70-250 ms, which the release of every drag used to cost. */
  function panShift(W, H) {
    var c = S.cache, g = S.g;
    if (!c || !g || c.g !== g || c.scale !== S.scale || c.marks !== S.marksKey || c.selected !== S.selected
        || c.W !== W || c.H !== H || c.labels || labelsAt(S.scale)) return null;
    var dx = (S.tx - c.tx) * S.dpr, dy = (S.ty - c.ty) * S.dpr;
    if (Math.abs(dx - Math.round(dx)) > 1e-6 || Math.abs(dy - Math.round(dy)) > 1e-6) return null;
    dx = Math.round(dx); dy = Math.round(dy);
    if ((!dx && !dy) || Math.abs(dx) > W * 0.75 || Math.abs(dy) > H * 0.75) return null;
    return {dx: dx, dy: dy};
  }

  /* the device-pixel rectangles [x, y, w, h] a move by (dx, dy) uncovers, without overlap (a pixel drawn twice
   * would get its anti-aliased edges twice) */
  function uncovered(dx, dy, W, H) {
    var out = [];
    if (dx > 0) out.push([0, 0, dx, H]); else if (dx < 0) out.push([W + dx, 0, -dx, H]);
    var x0 = dx > 0 ? dx : 0, x1 = dx < 0 ? W + dx : W;
    if (dy > 0) out.push([x0, 0, x1 - x0, dy]); else if (dy < 0) out.push([x0, H + dy, x1 - x0, -dy]);
    return out;
  }

  function labelsAt(k) {  // whether a drawing at zoom k writes any label (level of detail, see `labels`)
    return NODE_FONT * k >= LABEL_PX || (S.labels.length > 0 && EDGE_FONT * k >= LABEL_PX);
  }

  /* edges, overlays, nodes and labels of what is in `box` (graph units), on a context set to the view's transform */
  function paint(ctx, g, k, box) {
    var i, j;
    var hidden = S.marks.hidden, anyHidden = S.marks.anyHidden;
    if (anyHidden) edgeIndex(g);  // every edge's id is tested: made once, not per drawing
    var inBox = function (x, y) { return x >= box.x0 && x <= box.x1 && y >= box.y0 && y <= box.y1; };
    // edges: one path per style group
    var byGroup = g.edgeGroups.map(function () { return []; });
    for (i = 0; i < g.m; i++) {
      if (anyHidden && edgeHidden(i)) continue;
      var s = g.src[i], t = g.tgt[i];
      if (!inBox(g.x[s], g.y[s]) && !inBox(g.x[t], g.y[t]) && !crosses(box, g.x[s], g.y[s], g.x[t], g.y[t])) continue;
      byGroup[g.egroup[i]].push(i);
    }
    var arrows = 8 * k >= 4;  // arrowheads once they are a few pixels big
    for (j = 0; j < byGroup.length; j++) {
      var st = g.edgeGroups[j], list = byGroup[j];
      if (!list.length) continue;
      var lw = Math.max(st.width, MIN_PX / k);
      ctx.globalAlpha = st.alpha;
      ctx.strokeStyle = ctx.fillStyle = st.color;
      ctx.lineWidth = lw;
      ctx.setLineDash(st.dash === 1 ? [6 * lw, 3 * lw] : st.dash === 2 ? [lw, 2 * lw] : []);
      ctx.beginPath();
      for (i = 0; i < list.length; i++) {
        s = g.src[list[i]]; t = g.tgt[list[i]];
        ctx.moveTo(g.x[s], g.y[s]); ctx.lineTo(g.x[t], g.y[t]);
      }
      ctx.stroke();
      if (arrows) {
        ctx.setLineDash([]);
        ctx.beginPath();
        var size = 3 + 2.5 * st.width;
        for (i = 0; i < list.length; i++) {
          s = g.src[list[i]]; t = g.tgt[list[i]];
          var dx = g.x[t] - g.x[s], dy = g.y[t] - g.y[s], len = Math.hypot(dx, dy) || 1;
          var ux = dx / len, uy = dy / len, tipx = g.x[t] - ux * g.r[t], tipy = g.y[t] - uy * g.r[t];
          ctx.moveTo(tipx, tipy);
          ctx.lineTo(tipx - ux * size * 1.6 - uy * size, tipy - uy * size * 1.6 + ux * size);
          ctx.lineTo(tipx - ux * size * 1.6 + uy * size, tipy - uy * size * 1.6 - ux * size);
          ctx.closePath();
        }
        ctx.fill();
      }
    }
    ctx.setLineDash([]);
    // overlays under the nodes: found, highlighted, selected (edges as wide translucent strokes)
    overlays(ctx, g, k, inBox);
    // nodes: one path per fill; tiny on screen -> squares (cheaper than arcs, same look at 2 px)
    var minR = MIN_PX * 2 / k, nodesBy = g.nodeGroups.map(function () { return []; });
    for (i = 0; i < g.n; i++) {
      if ((anyHidden && hidden[g.N.id[i]]) || !inBox(g.x[i], g.y[i])) continue;
      nodesBy[g.ngroup[i]].push(i);
    }
    var tiny = NODE_SIZE / 2 * k < 2.5;
    for (j = 0; j < nodesBy.length; j++) {
      var ns = g.nodeGroups[j], nl = nodesBy[j];
      if (!nl.length) continue;
      ctx.globalAlpha = ns.alpha;
      ctx.fillStyle = ns.fill;
      ctx.beginPath();
      for (i = 0; i < nl.length; i++) {
        var r = Math.max(g.r[nl[i]], minR);
        if (tiny) ctx.rect(g.x[nl[i]] - r, g.y[nl[i]] - r, 2 * r, 2 * r);
        else shapePath(ctx, g.shape[nl[i]], g.x[nl[i]], g.y[nl[i]], r);
      }
      ctx.fill();
      if (ns.ring && !tiny) { ctx.strokeStyle = ns.ring; ctx.lineWidth = 3; ctx.stroke(); }
    }
    ctx.globalAlpha = 1;
    labels(ctx, g, k, byGroup, nodesBy);
  }

  function crosses(b, ax, ay, bx, by) {  // a segment's box overlaps the view (cheap test; long edges through the view)
    return Math.max(ax, bx) >= b.x0 && Math.min(ax, bx) <= b.x1 && Math.max(ay, by) >= b.y0 && Math.min(ay, by) <= b.y1;
  }

  function overlays(ctx, g, k, inBox) {
    var layers = [[S.marks.found, g.colors.found || "#7c3aed", 0.35], [S.highlight, g.colors.highlight || "#ec4899", 0.4]];
    if (S.selected) { var one = {}; one[S.selected] = true; layers.push([one, "#2563eb", 0.35]); }
    for (var l = 0; l < layers.length; l++) {
      var ids = layers[l][0], any = false;
      for (var id in ids) { if (ids[id]) { any = true; break; } }
      if (!any) continue;
      ctx.globalAlpha = layers[l][2];
      ctx.fillStyle = ctx.strokeStyle = layers[l][1];
      ctx.lineWidth = Math.max(10, 8 / k);
      ctx.lineCap = "round";
      ctx.beginPath();
      var nodes = [];
      for (id in ids) {
        if (!ids[id]) continue;
        var n = g.index.get(id);
        if (n !== undefined) {  // a node: the edges' id map (made on first use) is not needed for it
          if (inBox(g.x[n], g.y[n])) nodes.push(n);
          continue;
        }
        var e = edgeIndex(g).get(id);
        if (e !== undefined) {
          var s = g.src[e], t = g.tgt[e];
          ctx.moveTo(g.x[s], g.y[s]); ctx.lineTo(g.x[t], g.y[t]);
        }
      }
      ctx.stroke();
      ctx.beginPath();
      for (var i = 0; i < nodes.length; i++) {
        var r = Math.max(g.r[nodes[i]] + 8, 6 / k);
        ctx.moveTo(g.x[nodes[i]] + r, g.y[nodes[i]]);
        ctx.arc(g.x[nodes[i]], g.y[nodes[i]], r, 0, 6.283185307179586);
      }
      ctx.fill();
    }
    ctx.globalAlpha = 1;
    ctx.lineCap = "butt";
  }

  function edgeLabel(E, e) {  // E: edgeLabels(g)
    var parts = [];
    for (var i = 0; i < S.labels.length; i++) {
      var v = E[LABEL_KEYS[S.labels[i]]][e];
      if (v) parts.push(v);
    }
    var text = parts.join(" | ");
    return E.lock[e] && S.labels.length ? (E.lock[e] + " " + text).trim() : text;
  }

  /* level of detail: node names once NODE_FONT px at this zoom is legible, edge labels likewise */
  function labels(ctx, g, k, edgesBy, nodesBy) {
    var i, j, found = g.N.found_label || {};
    ctx.textAlign = "center";
    if (NODE_FONT * k >= LABEL_PX) {
      ctx.font = NODE_FONT + "px sans-serif";
      ctx.fillStyle = "#1f2937";
      ctx.textBaseline = "top";
      for (j = 0; j < nodesBy.length; j++) for (i = 0; i < nodesBy[j].length; i++) {
        var n = nodesBy[j][i], id = g.N.id[n];
        ctx.fillText(found[id] || g.N.label[n] || g.N.name[n] || id, g.x[n], g.y[n] + g.r[n] + 3);
      }
    }
    if (S.labels.length && EDGE_FONT * k >= LABEL_PX) {
      ctx.font = EDGE_FONT + "px sans-serif";
      ctx.fillStyle = "#374151";
      ctx.textBaseline = "bottom";
      for (j = 0; j < edgesBy.length; j++) for (i = 0; i < edgesBy[j].length; i++) {
        var e = edgesBy[j][i], s = g.src[e], t = g.tgt[e], text = edgeLabel(edgeLabels(g), e);
        if (text) ctx.fillText(text, (g.x[s] + g.x[t]) / 2, (g.y[s] + g.y[t]) / 2 - 3);
      }
    }
  }

  /* a frame during a gesture: the last full frame's bitmap moved and scaled, nothing else */
  function drawFast() {
    var c = S.cache, view = S.canvas.getContext("2d");
    view.setTransform(1, 0, 0, 1, 0, 0);
    view.clearRect(0, 0, S.canvas.width, S.canvas.height);
    if (!c) return;
    var k = S.scale / c.scale, dx = S.tx - k * c.tx, dy = S.ty - k * c.ty;
    view.drawImage(S.buf, S.dpr * dx, S.dpr * dy, S.buf.width * k, S.buf.height * k);
    S.stats.fast++;
  }

  function frame() {
    S.raf = 0;
    if (!S.canvas) return;
    if (S.gesture) drawFast(); else drawFull();
  }

  function schedule() {
    if (!S.raf) S.raf = requestAnimationFrame(frame);
  }

  function gestureMoved() {
    S.gesture = true;
    schedule();
  }

  function settleSoon() {
    clearTimeout(S.settle);
    S.wheeling = true;
    S.settle = setTimeout(function () { S.wheeling = false; gestureEnded(); }, SETTLE_MS);
  }

  /* a drag that has moved, or wheel events less than SETTLE_MS apart: the user is moving the view */
  function inGesture() {
    return !!((S.drag && S.drag.moved) || S.wheeling);
  }

  /* new data or marks: drawn in full now, or once the gesture under way ends. A refresh (every few seconds on a
   * live mesh) landing mid-drag used to draw the whole graph inside a gesture frame (34,000 edges: a frame of
   * 50-300 ms) and rebuild the layout's arrays; now a gesture frame is always one drawImage */
  function redraw() {
    if (inGesture()) { S.dirty = true; S.stats.deferred++; return; }
    S.gesture = false;
    schedule();
  }

  function gestureEnded() {
    var pending = S.pending;
    S.pending = undefined;
    S.dirty = false;
    if (pending !== undefined) { setElements(pending); return; }  // it schedules the full drawing
    S.gesture = false;
    schedule();
  }

  /* ---------- viewport ---------- */

  function fit() {
    var g = S.g;
    if (!g || !g.n || !S.w) return;
    var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (var i = 0; i < g.n; i++) {
      x0 = Math.min(x0, g.x[i] - g.r[i]); x1 = Math.max(x1, g.x[i] + g.r[i]);
      y0 = Math.min(y0, g.y[i] - g.r[i]); y1 = Math.max(y1, g.y[i] + g.r[i]);
    }
    var pad = 30;
    var whole = Math.min((S.w - 2 * pad) / (x1 - x0 || 1), (S.h - 2 * pad) / (y1 - y0 || 1));
    S.minZoom = Math.min(MIN_ZOOM, whole / 2);  // however big the mesh, the whole of it can be seen
    S.scale = Math.min(MAX_ZOOM, Math.max(S.minZoom, whole));
    S.tx = S.w / 2 - S.scale * (x0 + x1) / 2;
    S.ty = S.h / 2 - S.scale * (y0 + y1) / 2;
    S.fitted = true;
  }

  function resize() {
    S.dpr = Math.min(2, window.devicePixelRatio || 1);
    S.w = Math.max(1, S.host.clientWidth); S.h = Math.max(1, S.host.clientHeight);  // inside the border
    [S.canvas, S.buf].forEach(function (c) {
      c.width = Math.round(S.w * S.dpr); c.height = Math.round(S.h * S.dpr);
    });
    S.canvas.style.width = S.w + "px"; S.canvas.style.height = S.h + "px";
  }

  function local(evt) {
    var rect = S.canvas.getBoundingClientRect();
    return {x: evt.clientX - rect.left, y: evt.clientY - rect.top};
  }

  function fullName(h) {
    var g = S.g;
    if (h.kind === "node") {
      return (g.N.namespace[h.i] ? g.N.namespace[h.i] + "/" : "") + (g.N.name[h.i] || g.N.id[h.i]);
    }
    var s = g.src[h.i], t = g.tgt[h.i];
    return (g.N.name[s] || g.N.id[s]) + " \u2192 " + (g.N.name[t] || g.N.id[t]);
  }

  function tap(h) {
    var g = S.g, dc = window.dash_clientside;
    var data = h.kind === "node" ? nodeData(g, h.i) : edgeData(g, h.i);
    if (dc && dc.set_props) {
      var props = {};
      props[h.kind === "node" ? "tapNodeData" : "tapEdgeData"] = data;
      dc.set_props("topo-graph", props);
    }
  }

  function attach(host) {
    S.host = host;
    host.innerHTML = "";
    S.canvas = document.createElement("canvas");
    S.canvas.className = "topo-big-canvas";
    S.canvas.style.display = "block";
    host.appendChild(S.canvas);
    S.buf = document.createElement("canvas");
    S.cache = null; S.fitted = false;
    resize();
    if (window.ResizeObserver) {
      new ResizeObserver(function () {
        if (!S.host || !S.host.isConnected || S.host.style.display === "none") return;
        if (Math.abs(S.host.clientWidth - S.w) < 1 && Math.abs(S.host.clientHeight - S.h) < 1) return;
        resize();
        if (!S.fitted) fit();
        S.gesture = false; schedule();
      }).observe(host);
    }
    if (S.windowHooked) return attachCanvasOnly();  // window listeners once per page load, canvas ones per canvas
    S.windowHooked = true;
    attachCanvasOnly();
    window.addEventListener("mousemove", function (evt) {
      if (!S.canvas || !S.canvas.isConnected) return;
      var p = local(evt);
      if (S.drag) {
        if (!S.drag.moved && Math.abs(p.x - S.drag.x) + Math.abs(p.y - S.drag.y) < 4) return;
        S.drag.moved = true;
        S.tx = S.drag.tx + p.x - S.drag.x; S.ty = S.drag.ty + p.y - S.drag.y;
        gestureMoved();
        return;
      }
      if (evt.target !== S.canvas || S.hoverRaf) return;
      S.hoverRaf = requestAnimationFrame(function () {  // at most one hit test a frame
        S.hoverRaf = 0;
        var h = hit(p.x, p.y);
        if (h) { S.host.setAttribute("title", fullName(h)); S.canvas.style.cursor = "pointer"; }
        else { S.host.removeAttribute("title"); S.canvas.style.cursor = "default"; }
      });
    });
    window.addEventListener("mouseup", function (evt) {
      var drag = S.drag;
      S.drag = null;
      if (!drag || !S.canvas || !S.canvas.isConnected) return;
      if (drag.moved) { gestureEnded(); return; }
      var p = local(evt), h = hit(p.x, p.y);
      if (h) {
        tap(h);
        S.selected = h.kind === "node" ? S.g.N.id[h.i] : edgeId(S.g, h.i);
        schedule();
      }
    });
  }

  function attachCanvasOnly() {
    S.canvas.addEventListener("mousedown", function (evt) {
      if (evt.button !== 0) return;
      var p = local(evt);
      S.drag = {x: p.x, y: p.y, tx: S.tx, ty: S.ty, moved: false};
      evt.preventDefault();
    });
    S.canvas.addEventListener("wheel", function (evt) {
      evt.preventDefault();
      var p = local(evt), delta = evt.deltaMode === 1 ? evt.deltaY * 16 : evt.deltaY;
      var next = Math.min(MAX_ZOOM, Math.max(S.minZoom || MIN_ZOOM, S.scale * Math.pow(2, -delta / 500)));
      S.tx = p.x - (p.x - S.tx) * next / S.scale;
      S.ty = p.y - (p.y - S.ty) * next / S.scale;
      S.scale = next;
      gestureMoved();
      settleSoon();
    }, {passive: false});
  }

  function host() {
    return document.getElementById("topo-canvas");
  }

  function toSet(ids) {
    var out = {};
    (ids || []).forEach(function (id) { out[id] = true; });
    return out;
  }

  /* ---------- entry points (clientside callbacks) ---------- */

  function setElements(payload) {
    var el = host();
    if (!el) return;
    if (!payload || !payload.nodes) {  // below the threshold: Cytoscape draws
      el.style.display = "none";
      if (S.g) S.last = {g: S.g, view: {x: S.tx, y: S.ty, zoom: S.scale}};  // for Cytoscape's handoff
      S.g = null;
      S.pending = undefined;
      return;
    }
    el.style.display = "block";
    if (S.host !== el || !S.canvas || !S.canvas.isConnected) attach(el);
    else if (S.g && inGesture()) { S.pending = payload; S.stats.deferred++; return; }  // built when it ends
    var old = S.g, t0 = performance.now();
    if (!S.stats.dataAt) S.stats.dataAt = t0;
    S.payload = payload;
    S.g = build(payload, old);
    S.stats.buildMs = performance.now() - t0;
    // a refresh keeps the user's pan and zoom; taking over from Cytoscape (an aggregate opened in place grew the
    // view past the threshold) keeps Cytoscape's, so what was on screen stays where it was
    if (!old && takeOverView(S.g)) S.stats.handoffs++;
    else if (!S.fitted || !old) fit();
    redraw();
  }

  /* the Cytoscape core of the page, if any (dash-cytoscape registers it on its container as `_cyreg.cy`) */
  function cyCore() {
    var root = document.getElementById("topo-graph");
    if (!root) return null;
    var all = [root].concat(Array.prototype.slice.call(root.querySelectorAll("*")));
    for (var i = 0; i < all.length; i++) if (all[i]._cyreg && all[i]._cyreg.cy) return all[i]._cyreg.cy;
    return null;
  }

  /* whether `nodes` ({id: {x, y}}: some of the other renderer's last drawn nodes) are drawn by `g` at the same
   * model positions: the same view's layout (in-place changes), not another view's (grouped <-> expanded) */
  function sameLayout(g, nodes) {
    var shared = 0;
    for (var id in nodes) {
      var i = g.index.get(id);
      if (i === undefined) continue;
      if (Math.abs(g.x[i] - nodes[id].x) > 0.5 || Math.abs(g.y[i] - nodes[id].y) > 0.5) return false;
      shared++;
    }
    return shared > 0;
  }

  /* Cytoscape's viewport taken over when its last graph (topology_render.js notes a sample of it) shares nodes
   * with `g` at the same positions; both map model (x, y) to zoom * (x, y) + pan in boxes at the same place */
  function takeOverView(g) {
    var cy = cyCore(), last = window.meshscopeCyShown;  // {cy, nodes}: a page drawn anew has a new core
    if (!cy || !last || last.cy !== cy || !sameLayout(g, last.nodes)) return false;
    var pan = cy.pan();
    S.scale = cy.zoom(); S.tx = pan.x; S.ty = pan.y;
    S.minZoom = Math.min(MIN_ZOOM, S.scale / 2);
    S.fitted = true;
    return true;
  }

  function setMarks(marks, highlight, labels, selected) {
    // each refresh re-sends the highlight and the marks, equal most of the time: redraw only on a change (the
    // page's first call marks nothing: it must not draw the graph a second time right after its first view);
    // the selection comes back from the server after a click already marked it here (one drawing per click)
    var shown = Object.keys(LABEL_KEYS).filter(function (k) { return (labels || []).indexOf(k) >= 0; });
    var key = JSON.stringify([(marks || {}).found || [], (marks || {}).hidden || [], highlight || [], shown]);
    var same = key === S.marksKey;
    if (same && (selected || null) === S.selected) return;
    S.marksKey = key;
    if (same) { S.selected = selected || null; if (S.g) redraw(); return; }
    var found = toSet((marks || {}).found), hidden = toSet((marks || {}).hidden);
    S.marks = {found: found, hidden: hidden, anyHidden: ((marks || {}).hidden || []).length > 0};
    S.highlight = toSet(highlight);
    S.labels = shown;
    S.selected = selected || null;
    if (S.g) redraw();
  }

  window.meshscopeBig = {
    /* for tests and `bench ui`: what is drawn, where an element is on screen (CSS px in the canvas) */
    stats: function () {
      return Object.assign({nodes: S.g ? S.g.n : 0, edges: S.g ? S.g.m : 0, selected: S.selected,
                            shown: !!(S.host && S.host.isConnected && S.host.style.display !== "none")}, S.stats);
    },
    viewport: function () { return {x: S.tx, y: S.ty, zoom: S.scale}; },
    columns: function () {  // the columns as decoded here (tests hold them to the server's own decoding)
      var g = S.g, L = g && edgeLabels(g);
      return g && {nodes: {id: g.N.id, name: g.N.name, label: g.N.label, namespace: g.N.namespace, type: g.N.type,
                           x: Array.from(g.x), y: Array.from(g.y)},
                   edges: {id: g.eid, s: Array.from(g.src), t: Array.from(g.tgt), rps: L.rps, err: L.err, p95: L.p95,
                           lock: L.lock}};
    },
    payload: function () { return S.payload; },
    node: function (id) {
      var i = S.g && S.g.index.get(id);
      return i === undefined || i === null ? null : {label: S.g.N.label[i] || S.g.N.name[i], name: S.g.N.name[i]};
    },
    screenPosition: function (id) {
      var g = S.g, i = g && g.index.get(id);
      if (i === undefined || i === null) {
        var e = g && edgeIndex(g).get(id);
        if (e === undefined || e === null) return null;
        var s = g.src[e], t = g.tgt[e];  // a third of the way along, clear of both ends
        return {x: S.tx + S.scale * (g.x[s] + (g.x[t] - g.x[s]) / 3), y: S.ty + S.scale * (g.y[s] + (g.y[t] - g.y[s]) / 3)};
      }
      return {x: S.tx + S.scale * g.x[i], y: S.ty + S.scale * g.y[i]};
    },
    zoomTo: function (scale, centerId) {  // zoom to `scale` around an element, drawn now (as a user zooms in)
      var p = centerId ? this.screenPosition(centerId) : {x: S.w / 2, y: S.h / 2};
      if (!p) return false;
      var gx = (p.x - S.tx) / S.scale, gy = (p.y - S.ty) / S.scale;
      S.scale = scale; S.tx = S.w / 2 - scale * gx; S.ty = S.h / 2 - scale * gy;
      S.gesture = false;
      drawFull();
      return true;
    },
    fit: function () { fit(); S.gesture = false; drawFull(); return S.scale; },
    redraw: function () { S.cache = null; S.gesture = false; drawFull(); return true; },  // in full, the view kept
    hitAt: function (x, y) { var h = hit(x, y); return h && (h.kind === "node" ? S.g.N.id[h.i] : edgeId(S.g, h.i)); },
    /* the canvas's last viewport, when Cytoscape takes over a graph drawn with the same layout (`nodes`: a
     * sample of Cytoscape's nodes, {id: {x, y}}); null when it is another view, which Cytoscape fits instead */
    handoff: function (nodes) {
      var last = S.last;
      S.last = null;
      return last && sameLayout(last.g, nodes) ? last.view : null;
    },
    found: function () { return Object.keys(S.marks.found).length; },
    foundIds: function () { return Object.keys(S.marks.found); },
    hidden: function () { return Object.keys(S.marks.hidden).length; }
  };

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    meshscope_big: {
      elements: function (payload) { setElements(payload); return window.dash_clientside.no_update; },
      marks: function (marks, highlight, labels, selected) {
        setMarks(marks, highlight, labels, selected);
        return window.dash_clientside.no_update;
      }
    }
  });
})();
