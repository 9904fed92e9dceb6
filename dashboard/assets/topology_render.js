/* meshscope topology page: drawing big graphs (issue #17).
 *
 * dash-cytoscape does not expose Cytoscape's renderer options, so they are set
 * here on the live renderer once the graph exists:
 * - large graphs (LARGE_ELEMENTS and more) pan and zoom on a cached texture of the
 *   last full frame (textureOnViewport) and leave edges out of frames drawn while the
 *   viewport moves (hideEdgesOnViewport): a frame then costs the nodes, not 30,000
 *   edges with arrows. The full drawing comes back as soon as the gesture ends.
 * - node labels are truncated on the server; hovering a node or an edge puts the full
 *   name in the graph container's title (the browser's own tooltip).
 * - the clicked element is marked with a class instead of a stylesheet rule: a new
 *   stylesheet restyles every element (seconds at 10,000 nodes), a class one element.
 */
(function () {
  "use strict";
  var LARGE_ELEMENTS = 2000;

  function container() {
    return document.getElementById("topo-graph");
  }

  function cyOf() {
    var root = container();
    if (!root) return null;
    var all = [root].concat(Array.prototype.slice.call(root.querySelectorAll("*")));
    for (var i = 0; i < all.length; i++) {
      if (all[i]._cyreg && all[i]._cyreg.cy) return all[i]._cyreg.cy;
    }
    return null;
  }

  function fitRenderer(cy) {
    var r = cy.renderer && cy.renderer();
    if (!r) return;
    var large = cy.elements().length >= LARGE_ELEMENTS;
    r.textureOnViewport = large;
    r.hideEdgesOnViewport = large;
    cy.scratch("_meshscope_large", large);
  }

  function fullName(ele) {
    var d = ele.data();
    if (ele.isNode()) return (d.namespace ? d.namespace + "/" : "") + (d.name || d.id);
    var s = ele.source(), t = ele.target();
    return (s.data("name") || d.source) + " \u2192 " + (t.data("name") || d.target);
  }

  /* The joined edge labels the stylesheet points at (`data(lbl_rps_err)`...), one per combination of
   * the label toggles, as graph_style.edge_label_data builds them; joined here so they need not travel. */
  var LABEL_FIELDS = [["rps", "label_rps"], ["err", "label_err"], ["p95", "label_p95"]];

  function joinLabels(edge) {
    var d = edge.data(), out = {}, changed = false;
    for (var mask = 1; mask < 8; mask++) {
      var keys = [], parts = [];
      for (var j = 0; j < LABEL_FIELDS.length; j++) {
        if (mask >> j & 1) {
          keys.push(LABEL_FIELDS[j][0]);
          if (d[LABEL_FIELDS[j][1]]) parts.push(d[LABEL_FIELDS[j][1]]);
        }
      }
      var text = parts.join(" | ");
      var value = d.lock ? (d.lock + " " + text).trim() : text;
      var key = "lbl_" + keys.join("_");
      out[key] = value;
      if (d[key] !== value) changed = true;
    }
    if (changed) edge.data(out);  // unchanged: no write, so the `data` event below does not loop
  }

  /* Edge labels are joined only while the stylesheet shows one: a large graph opens with edge labels
   * off, and writing 30,000 edges' data at mount restyled every edge a second time (~1 s at 10,000 workloads). */
  function labelsShown(json) {
    return JSON.stringify(json || []).indexOf("data(lbl_") >= 0;
  }

  function joinAll(cy) {
    cy.batch(function () { cy.edges().forEach(joinLabels); });
  }

  /* dash-cytoscape re-applies its whole stylesheet whenever the prop is a new array, even one equal to
   * what is drawn (each 10 s refresh re-sends the highlight store, which re-runs the restyle callback):
   * `fromJson` + `update()` restyles every element, seconds of main thread at 10,000 workloads, every
   * refresh and under a click. An equal stylesheet is skipped here; a different one is applied as before. */
  /* The stylesheet prop the component last applied (React keeps it on the component's fiber), so the
   * first refresh's equal stylesheet is recognised too; null when React's internals are not there. */
  function propStylesheet() {
    var root = container();
    if (!root) return null;
    var key = Object.keys(root).filter(function (k) { return k.indexOf("__reactFiber$") === 0; })[0];
    for (var fiber = key && root[key]; fiber; fiber = fiber.return) {
      if (fiber.memoizedProps && fiber.memoizedProps.stylesheet) return fiber.memoizedProps.stylesheet;
    }
    return null;
  }

  function guardStyle(cy) {
    var style = cy.style();
    if (!style || style._meshscopeGuarded) return;
    var original = style.fromJson.bind(style);
    var applied = JSON.stringify(propStylesheet());
    style._meshscopeGuarded = true;
    style.fromJson = function (json) {
      var key = JSON.stringify(json);
      if (key === applied) return {update: function () { return style; }};
      applied = key;
      if (labelsShown(json) && !cy.scratch("_meshscope_labels")) {
        cy.scratch("_meshscope_labels", true);
        joinAll(cy);
      }
      return original(json);
    };
  }

  /* some of the drawn nodes and their model positions: enough for the other renderer to tell whether the graph
   * it takes over has the same layout (assets/big_graph.js, takeOverView / handoff) */
  function sample(cy) {
    var out = {}, nodes = cy.nodes(), step = Math.max(1, Math.floor(nodes.length / 64));
    for (var i = 0; i < nodes.length; i += step) {
      var p = nodes[i].position();
      out[nodes[i].id()] = {x: p.x, y: p.y};
    }
    return out;
  }

  function tune(cy) {
    if (cy.scratch("_meshscope_tuned")) return;
    cy.scratch("_meshscope_tuned", true);
    guardStyle(cy);
    if (labelsShown(propStylesheet() || cy.style().json())) {
      cy.scratch("_meshscope_labels", true);
      joinAll(cy);
    }
    cy.on("add data", "edge", function (evt) {
      if (cy.scratch("_meshscope_labels")) joinLabels(evt.target);
    });
    fitRenderer(cy);
    var pending = null, empty = cy.elements().length === 0;
    if (!empty) window.meshscopeCyShown = {cy: cy, nodes: sample(cy)};  // mounted with its elements
    cy.on("add remove", function () {  // a refresh can cross the size threshold either way
      if (pending) return;
      pending = setTimeout(function () {
        pending = null;
        fitRenderer(cy);
        // a graph that was drawn on the canvas (assets/big_graph.js) left Cytoscape empty: the first
        // elements it gets back take the canvas's viewport when they are the same view's (an opened group
        // collapsed again: what stays keeps its place on screen), else are fitted, as a page opened on them
        if (empty && cy.elements().length) {
          var big = window.meshscopeBig, view = big && big.handoff && big.handoff(sample(cy));
          if (view) cy.viewport({zoom: view.zoom, pan: {x: view.x, y: view.y}});
          else cy.fit(undefined, 30);
        }
        empty = cy.elements().length === 0;
        if (!empty) window.meshscopeCyShown = {cy: cy, nodes: sample(cy)};  // for the canvas, should it take this view over
      }, 200);
    });
    cy.on("mouseover", "node, edge", function (evt) {
      var root = container();
      if (root) root.setAttribute("title", fullName(evt.target));
    });
    cy.on("mouseout", "node, edge", function () {
      var root = container();
      if (root) root.removeAttribute("title");
    });
  }

  // the page is rendered by Dash after this file loads, and again on every visit: look for the graph
  setInterval(function () {
    var cy = cyOf();
    if (cy) tune(cy);
  }, 250);

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    meshscope_topology: {
      /* topo-selected -> the `ms-selected` class on that element only */
      markSelected: function (selected) {
        var cy = cyOf();
        if (cy) {
          cy.batch(function () {
            cy.$(".ms-selected").removeClass("ms-selected");
            if (selected) cy.getElementById(selected).addClass("ms-selected");
          });
        }
        return window.dash_clientside.no_update;
      },
      /* a refresh's side panel, only if its element is still the one selected now: a click that landed
         while the refresh was in flight has already drawn its own panel, which must not be replaced */
      followPanel: function (update, selected) {
        if (update && update.id === selected) return update.panel;
        return window.dash_clientside.no_update;
      },
      /* replay Play/Pause, applied at once: pause where it is; play from where it is, or from the first
         slice when the whole window ("all", the last step) is shown (dashboard/components/replay.py) */
      replayToggle: function (_clicks, step, last, stopped) {
        var nu = window.dash_clientside.no_update;
        if (!stopped) return [nu, true, "\u25b6 Play"];
        var at = (step === null || step === undefined) ? last : Number(step);
        return [at >= last ? 0 : nu, false, "\u23f8 Pause"];
      },
      /* a tick's next step, only if still playing from the step it was proposed for */
      replayStep: function (next, step, stopped) {
        var nu = window.dash_clientside.no_update;
        if (!next || stopped || Number(step) !== next.from) return [nu, nu, nu];
        return [next.to, !next.playing, next.playing ? "\u23f8 Pause" : "\u25b6 Play"];
      }
    }
  });
})();
