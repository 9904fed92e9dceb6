"""The dashboard's data source over the running parts (`dashboard.query.DataSource`).

The UI and the API only lay out what this returns; every number comes from the
backend's rate frame, the collector store, the topology builder and the live
diagnoser. Graphs are cached for a second so the page and the API hitting the
same view in one refresh cost one build, and longer (up to `_IDLE_TTL_S`) while the
backend reports no new data (`data_version`: the store's generation): idle is idle.
Requests read the latest computed state and never wait for a build (issue #18): once a
view has a graph, a request gets it at once while ONE background refresh of that view
runs (stale-while-revalidate; at most `_STALE_S` old, or twice the view's last build time
if that is longer: on a starved machine waiting would give numbers hardly fresher, only
late). Only a view with no usable graph is computed on a request, once for all concurrent
callers. Each graph carries the time it describes and the API sends its age
(`dashboard.api.freshness`). Applying a scenario makes every view due, not absent.
Findings and SLOs are the diagnoser's latest state (`state_as_of`), never a cycle run on
the request's time. Side-panel series cost at most one more:
each graph remembers its element ids (a click names only an id) and the frames
of its series, and the series are computed by topology's own code
(`meshscope.element_series`), so they end on the numbers the graph shows. The
Service page's per-version series come from the same code and frames of one series,
with no graph build.
"""
from __future__ import annotations

import copy
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from dashboard.coalesced import Coalesced
from dashboard.query import GRAPH_TYPES, TRACE_STATUSES, GraphResult, QueryError, TraceFilters, Unavailable, checked_finding_filters
from meshscope.trace_list import TraceList, window_bounds

log = logging.getLogger("meshscope.live_source")

DEFAULT_WINDOW_S = 60.0
SERIES_POINTS = 20
REPORT_FORMATS = ("html", "md", "json", "pdf")
_GRAPH_TTL_S = 1.0
_LINKS_TTL_S = 5.0  # finding -> graph element links may use a graph this old (one build per UI refresh, not per call)
_IDLE_TTL_S = 15.0  # a graph whose inputs did not change is reused this long
_STALE_S = 60.0  # the latest graph of a view stands in (while one refresh runs) up to this old, or 2 builds if longer
_LINKS_VIEW = ("workload", (), DEFAULT_WINDOW_S)  # the graph whose elements findings link to
_LAYOUT_KEYS = 32  # findings filter sets whose layout is kept
_LAYOUT_KEEP_S = 120.0  # a filter set read this recently is laid out again in the background after a cycle
_SHARED_KEYS = 64  # graph views and findings states whose sharing state is kept while idle
_DRAWN_REQUESTS = 32  # graph requests whose element ids are remembered for side-panel lookups
_SPAN_COLUMNS = ["trace_id", "span_id", "parent_span_id", "service_name", "name", "kind", "start_time", "end_time",
                 "duration_ms", "status_code", "response_code", "response_flags", "attributes"]


@dataclass
class _Built:
    """One built graph request: when, what the UI gets, the networkx graph and the rate frame it came from."""

    at: float
    result: GraphResult
    graph: Any
    rates: pd.DataFrame
    frames: dict[int, list] = field(default_factory=dict)  # points -> side-panel frames ending on this graph
    version: Any = None  # the backend's data version it was built from
    seconds: float = 0.0  # how long it took to build (wall time: what a waiting request would wait)
    config: int = 0  # the source's config generation it was built under (a scenario applied since: refresh)


class LiveSource:
    """`DataSource` over a started `meshscope.app.Stack`."""

    def __init__(self, stack: Any):
        self.stack = stack
        self._lock = threading.Lock()
        self._graphs: dict[tuple, _Built] = {}
        self._drawn: dict[tuple, frozenset[str]] = {}  # graph request -> element ids, oldest first
        self._graph_failing = False
        # one computation per graph view or findings state for all concurrent callers, and the views' refreshes
        self._sharing = Coalesced(keep=_SHARED_KEYS)
        self._config = 0  # bumped when this source changes the config (a scenario): cached graphs are then due
        self._layouts: dict[tuple, tuple[tuple, list]] = {}  # findings filter set -> (its state, laid-out findings)
        self._layout_reads: dict[tuple, float] = {}  # findings filter set -> when last read (monotonic)
        self._relayout_running = self._relayout_again = False
        self._incidents: dict[tuple, tuple[list, list]] = {}  # filter set -> (the layout they were grouped from, incidents)
        self.findings_layouts = 0  # findings laid out (one state, one filter set), for tests and self-checks
        self.graph_builds = 0  # graphs built (cache misses), for tests and self-checks
        self.builds_by_view: dict[tuple, int] = {}  # (graph type, namespaces, window) -> graphs built
        self._trace_list = TraceList(lambda: self.stack.store)  # the trace list's kept summaries (#18)

    # ---- plumbing -------------------------------------------------------------------------
    @property
    def backend(self) -> Any:
        return self.stack.backend

    def now(self) -> float:
        return time.time()

    def requests_between(self, start: float, end: float) -> pd.DataFrame | None:
        """The access-log rows (requests table) between two epoch seconds: the what-if replays them."""
        return self.stack._requests(start, end)

    def _build(self, graph_type: str, namespaces: list[str] | None, window_s: float,
               max_age: float = _GRAPH_TTL_S) -> tuple[GraphResult, Any]:
        entry = self._entry(graph_type, namespaces, window_s, max_age)
        return entry.result, entry.graph

    def _data_version(self) -> Any:
        """What the graphs are computed from, as one comparable value (None: unknown, rely on age)."""
        fn = getattr(self.backend, "data_version", None)
        try:
            return fn() if fn is not None else None
        except Exception:  # noqa: BLE001 - a version is an optimisation; without it the TTL rules
            return None

    def _fresh(self, hit: _Built | None, now: float, max_age: float, version: Any) -> bool:
        if hit is None or hit.config != self._config:
            return False
        age = now - hit.at
        return age < max_age or (version is not None and version == hit.version and age < _IDLE_TTL_S)

    def _entry(self, graph_type: str, namespaces: list[str] | None, window_s: float,
               max_age: float = _GRAPH_TTL_S) -> _Built:
        """The graph of a request, at once: cached when fresh (young, or its inputs unchanged); else the
        latest graph of the view stands in while ONE background refresh of the view recomputes it.

        Only a view with no usable graph (never built, or older than `_stand_in_s`) is computed on the
        request's time, once for every concurrent caller. Each graph carries the time it describes
        (`GraphResult.updated_at`; the API adds its age), so a reader knows how old the answer is.
        """
        if graph_type not in GRAPH_TYPES:
            raise QueryError("graphType", f"unknown graph type {graph_type!r} (known: {', '.join(GRAPH_TYPES)})")
        if window_s <= 0:
            raise QueryError("window", "must be a positive number of seconds")
        key = (graph_type, tuple(sorted(namespaces or ())), window_s)
        now = self.now()
        version = self._data_version()
        compute = lambda: self._compute(key, version)  # noqa: E731
        with self._lock:
            hit = self._graphs.get(key)
            if self._fresh(hit, now, max_age, version):
                return hit
        # a graph of no traffic (built at start, before the first scrapes) never stands in: it is cheap to redo
        if hit is not None and len(hit.rates) > 0 and now - hit.at < _stand_in_s(hit):
            # answer now with the latest graph; at most one refresh per view runs, off the request path
            self._sharing.start(key, compute, name="graph-refresh")
            return hit
        # no usable graph: one build for every concurrent caller (or the refresh already running), unless a
        # graph other than the unusable one that was there is published meanwhile (a dict read: no lock needed)
        return self._sharing.get(key, compute, lambda: None if (b := self._graphs.get(key)) is hit else b)

    def _compute(self, key: tuple, version: Any) -> _Built:
        from dashboard.elements import from_topology, ui_elements
        from meshscope.crashes import restarts_by_workload
        from meshscope.slo_health import health_for
        from topology import build_graph, to_cytoscape

        graph_type, namespaces, window_s = key[0], list(key[1]) or None, key[2]
        now = self.now()
        t0 = time.monotonic()
        config = self._config
        rates = self.backend.rates(window_s, now)
        graph = build_graph(rates, graph_type, namespaces, snapshot=self.backend.snapshot(),
                            window_s=window_s, query_time=now, health=health_for(self.stack))  # latency SLOs colour too
        nodes, edges = from_topology(to_cytoscape(graph))
        _mark_restarts(nodes, restarts_by_workload(self.backend))  # crashed sidecars carry their restart count
        self._mark_canaries(nodes, edges)  # canary versions to roll back or promote carry the live verdict
        all_ns = sorted({n.get("namespace") for n in nodes if n.get("namespace") not in (None, "", "unknown")})
        notes = [] if len(rates) else ["no traffic in this window yet: the collectors may still be warming up"]
        result = GraphResult(ui_elements(nodes, edges), graph_type, all_ns, window_s, now, notes)
        built = _Built(now, result, graph, rates, version=version, seconds=time.monotonic() - t0, config=config)
        with self._lock:
            self.graph_builds += 1
            self.builds_by_view[key] = self.builds_by_view.get(key, 0) + 1
            self._graphs = {k: v for k, v in self._graphs.items() if now - v.at < max(_LINKS_TTL_S, _stand_in_s(v))}
            self._graphs[key] = built
            # which request each element id was last drawn in: a side-panel click names only the id
            self._drawn.pop(key, None)
            self._drawn[key] = frozenset(e["data"]["id"] for e in result.elements)
            while len(self._drawn) > _DRAWN_REQUESTS:
                self._drawn.pop(next(iter(self._drawn)))
        if key == _LINKS_VIEW:  # the findings link to this graph's elements: lay them out again, off this thread
            self.refresh_findings()
        return built

    def _mark_canaries(self, nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> None:
        from diagnose.canary.marks import MARKED_CODES, mark_graph

        diagnoser = getattr(self.stack, "diagnoser", None)
        if diagnoser is not None:
            mark_graph(nodes, edges, [f for f in diagnoser.findings({"status": "open"}) if f.code in MARKED_CODES])

    def canary(self, window_s: float = 600.0) -> dict[str, Any]:
        """Canary verdicts and findings over the window (as GET /api/v1/canary): the service page's section."""
        from diagnose.canary.findings import findings_of
        from diagnose.canary.steps import journal_of, judge

        snap = self.backend.snapshot()
        verdicts = judge(self.backend.rates, list(snap.objects), snap.mesh_config.root_namespace,
                         journal_of(self.backend), window_s, time.time(),
                         requests=getattr(self.backend, "requests", None))  # per-path check (access logs)
        findings = findings_of(verdicts, list(snap.objects), snap.mesh_config.root_namespace)
        return {"window_s": window_s, "verdicts": [v.to_dict() for v in verdicts],
                "findings": [f.to_dict() for f in findings]}

    def _elements_or_none(self) -> list[dict[str, Any]]:
        """The workload graph's elements, or [] when it cannot be built right now.

        Findings come from the diagnoser, not from the graph: an unreachable Prometheus
        (`meshscope serve`) must cost the findings their graph links, not the findings.
        """
        try:
            elements = self._build(*_LINKS_VIEW, max_age=_LINKS_TTL_S)[0].elements
        except Exception as exc:  # noqa: BLE001 - any backend failure; the graph page reports it itself
            # said once per outage, not on every refresh of every open page
            (log.debug if self._graph_failing else log.warning)(
                "findings shown without graph links: the graph cannot be built (%s)", exc)
            self._graph_failing = True
            return []
        self._graph_failing = False
        return elements

    # ---- graph ----------------------------------------------------------------------------
    def warm(self) -> None:
        """Build the default views (Topology's workload graph, the Overview's and Services' service graph) once, off
        the request path, so no first page or API call computes one: from then on reads get the latest at once."""
        for name, read in (("workload graph", lambda: self.graph("workload")),
                           ("service graph", lambda: self.graph("service"))):
            try:
                read()
            except Exception as exc:  # noqa: BLE001 - the page reports a failing view itself
                log.debug("warming the default %s failed: %s", name, exc)

    def graph(self, graph_type: str = "workload", namespaces: list[str] | None = None,
              window_s: float | None = None) -> GraphResult:
        return self._build(graph_type, namespaces, float(window_s or DEFAULT_WINDOW_S))[0]

    def element_metrics(self, element_id: str, window_s: float | None = None, graph_type: str | None = None,
                        namespaces: list[str] | None = None) -> dict[str, Any] | None:
        """Golden-metric series of a node (its inbound traffic) or an edge, over the window.

        Builds at most one graph: the request the element was drawn in is `graph_type` (+
        `namespaces`) when the caller says, else the last graph built for the UI that held
        the id, else the workload graph. Every point is the graph's own number at that time
        (rate over the window, topology's rules, see `meshscope.element_series`); the last
        point is the graph itself.
        """
        from meshscope.element_series import element_series, graph_options, series_frames

        window = float(window_s or DEFAULT_WINDOW_S)
        if graph_type is None:
            graph_type, namespaces = self._drawn_in(element_id, window)
        entry = self._entry(graph_type, namespaces, window, max_age=_LINKS_TTL_S)
        found = _find_element(entry.result.elements, element_id)
        if found is None or found.get("type") == "box":
            return None
        with self._lock:
            frames = entry.frames.get(SERIES_POINTS)
        if frames is None:  # once per graph: the next click on it reuses the points
            frames = series_frames(self._frames(window, entry.at, last=entry.rates))
            with self._lock:
                entry.frames = {SERIES_POINTS: frames}
        return element_series(frames, found, graph_options(graph_type, namespaces, window))

    def _drawn_in(self, element_id: str, window_s: float) -> tuple[str, list[str] | None]:
        """(graph type, namespaces) of the latest graph request holding the id; same window first."""
        with self._lock:
            drawn = list(self._drawn.items())[::-1]
        hits = [key for key, ids in drawn if element_id in ids]
        key = next((k for k in hits if k[2] == window_s), hits[0] if hits else None)
        return (key[0], list(key[1]) or None) if key else ("workload", None)

    def service_metrics(self, service: str, window_s: float | None = None,
                        end: float | None = None) -> dict[str, Any] | None:
        """Inbound and outbound series of one service per version (the Service page).

        Every point is the workload graph's numbers at that time (its nodes, rates and error
        share: HTTP 4xx + 5xx + no response, gRPC errors, see `meshscope.element_series`), so
        the page and the graph's edges and nodes agree. Costs the frames of one series and
        no graph build.
        """
        from meshscope.element_series import graph_options, series_frames, service_series

        window = float(window_s or DEFAULT_WINDOW_S)
        name, _, rest = service.partition(".")
        namespace = rest.split(".")[0] if rest else None
        if end is not None and end > self.now() + 1:
            raise QueryError("end", "must not be in the future")
        frames = series_frames(self._frames(window, end))
        out = service_series(frames, name, namespace, graph_options("workload", None, window))
        if not out["inbound"] and not out["outbound"]:
            return None
        return out

    def _frames(self, window_s: float, end: float | None = None,
                last: pd.DataFrame | None = None) -> list[tuple[float, pd.DataFrame]]:
        """The rate frame over `window_s` at each of SERIES_POINTS times up to `end`, `step` apart.

        A backend with `rates_range` (Prometheus) answers all points with one range query
        per metric; others are asked point by point. `last`, the frame a graph was built
        from at `end`, stands in for the last point so the series ends on the graph's numbers.
        """
        end = self.now() if end is None else end
        step = max(window_s / 2, 5.0)
        points = [end - step * i for i in range(SERIES_POINTS - 1, -1, -1)]
        ranged = getattr(self.backend, "rates_range", None)
        if ranged is not None:
            frames = ranged(window_s, points[0], end, step)
        else:  # the baseline: one rate frame per point (cheap from the local store)
            frames = [(t, self.backend.rates(window_s, t)) for t in points[:-1]]
            frames.append((end, self.backend.rates(window_s, end) if last is None else last))
        if last is not None and frames:
            frames[-1] = (end, last)
        return frames

    def services(self, end: float | None = None, window_s: float | None = None) -> list[dict[str, Any]]:
        """Services with health and traffic over the window (a minute by default) ending now, or (time travel) `end`."""
        window = float(window_s or DEFAULT_WINDOW_S)
        result = self.graph("service", None, window) if end is None else self.graph_at("service", None, window, end)
        out = []
        for el in result.elements:
            d = el["data"]
            if "source" in d or d.get("type") != "service" or not d.get("namespace") or d.get("namespace") == "unknown":
                continue
            out.append({"service": f"{d.get('name')}.{d['namespace']}.svc.cluster.local", "name": d.get("name"),
                        "namespace": d["namespace"], "id": d["id"], "health": d.get("health", "na"),
                        "rps": d.get("rps_in", 0.0), "error_pct": d.get("error_pct", 0.0), "has_metrics": True,
                        "rps_out": d.get("rps_out", 0.0), "health_reason": d.get("health_reason", "")})
        return sorted(out, key=lambda r: (r["namespace"], r["name"] or ""))

    # ---- findings -------------------------------------------------------------------------
    def findings(self, filters: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """The diagnoser's findings with their graph elements and ranked changes, as of its latest cycle.

        Laid out once per state (`_findings_generation`: the diagnoser's cycle, scenarios applied here, the
        config journal, the graph the elements come from) and filter set, mostly in the background right after
        the state moves on (`refresh_findings`). A request whose state equals the laid-out one's is answered
        from it; one that sees a newer state (a cycle or a scenario since) gets a layout of that state, made
        once for every concurrent caller, never the previous one. Each caller gets its own copy.
        """
        filters = checked_finding_filters(filters)
        fkey = tuple(sorted((k, str(v)) for k, v in filters.items()))
        return copy.deepcopy(self._laid_out_findings(fkey))

    def open_findings_and_incidents(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The open findings and the incidents they form, of one state (the Overview's cards and incident list).

        Grouping findings into incidents cost the Overview a third of its layout time per request; it is done
        once per laid-out state, like the layout itself. Each caller gets its own copies."""
        from diagnose.incidents import incidents_of_dicts

        fkey = (("status", "open"),)
        found = self._laid_out_findings(fkey)
        with self._lock:
            memo = self._incidents.get(fkey)
        if memo is None or memo[0] is not found:
            memo = (found, incidents_of_dicts(found))
            with self._lock:
                self._incidents[fkey] = memo
        return copy.deepcopy(found), copy.deepcopy(memo[1])

    def _laid_out_findings(self, fkey: tuple, read: bool = True) -> list[dict[str, Any]]:
        """The layout of the current state for a filter set (`read`: a request's, which keeps it refreshed)."""
        generation = self._findings_generation()
        with self._lock:
            if read:
                self._layout_reads[fkey] = time.monotonic()
            while len(self._layout_reads) > _LAYOUT_KEYS:  # free-text filters: the least recently read go
                oldest = min(self._layout_reads, key=self._layout_reads.__getitem__)
                self._layout_reads.pop(oldest)
                self._layouts.pop(oldest, None)

        def ready() -> list[dict[str, Any]] | None:
            laid = self._layouts.get(fkey)
            return laid[1] if laid is not None and laid[0] == generation else None

        def compute() -> list[dict[str, Any]]:
            found = self._lay_out_findings(dict(fkey))
            with self._lock:
                if fkey in self._layout_reads:
                    self._layouts[fkey] = (generation, found)
                self.findings_layouts += 1
            return found

        return self._sharing.get(("findings", fkey, generation), compute, ready)

    def _findings_generation(self) -> tuple:
        """The state a findings layout is made from, as one comparable value read before that state is: the
        diagnoser's cycle, this source's scenario epoch, the config journal's last change and the workload graph
        whose elements the findings link to (its build time; None when it cannot be built)."""
        count = (getattr(getattr(self.stack, "diagnoser", None), "last_evaluation", None) or {}).get("count")
        j = self.journal()
        try:
            last_change = j.last_seq() if j is not None and hasattr(j, "last_seq") else None
        except Exception:  # noqa: BLE001 - a closed journal: the other parts still key the layout
            last_change = None
        try:
            graph_at = self._entry(*_LINKS_VIEW, max_age=_LINKS_TTL_S).at
        except Exception:  # noqa: BLE001 - laid out without graph links (`_elements_or_none` says why)
            graph_at = None
        return count, self._config, last_change, graph_at

    def refresh_findings(self, *_: Any) -> None:
        """Lay out the recently read filter sets of the state that just came to be, off the request path (the
        live diagnoser calls this after each cycle; a new links graph does too): requests then find it ready."""
        with self._lock:
            if self._relayout_running:
                self._relayout_again = True
                return
            self._relayout_running = True
        threading.Thread(target=self._relayout, daemon=True, name="findings-layout").start()

    def _relayout(self) -> None:
        try:
            while True:
                with self._lock:
                    self._relayout_again = False
                    cutoff = time.monotonic() - _LAYOUT_KEEP_S
                    keys = [k for k, at in self._layout_reads.items() if at >= cutoff]
                for fkey in keys:
                    try:
                        self._laid_out_findings(fkey, read=False)
                    except Exception as exc:  # noqa: BLE001 - the next request lays it out and reports it
                        log.debug("laying out findings %s failed: %s", fkey, exc)
                with self._lock:
                    if not self._relayout_again:
                        self._relayout_running = False
                        return
        except BaseException:
            with self._lock:
                self._relayout_running = False
            raise

    def _lay_out_findings(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        element = filters.pop("element", None)
        found = [f.to_dict() for f in self.stack.diagnoser.findings(filters)]
        touched = _toucher(self._elements_or_none())
        for f in found:
            f["elements"] = touched(f)
        if element:
            found = [f for f in found if element in f["elements"]]
        self._with_changes(found)
        return found

    # ---- config journal -------------------------------------------------------------------
    def journal(self) -> Any:
        """The config journal: the bundled mesh's, or the one the cluster backend's watches feed; None if neither."""
        mesh = getattr(self.backend, "mesh", None)
        return getattr(mesh, "journal", None) if mesh is not None else getattr(self.backend, "journal", None)

    def changes(self, since: float | None = None, until: float | None = None, namespace: str | None = None,
                kind: str | None = None, name: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        j = self.journal()
        if j is None:
            raise Unavailable("no config journal on this source")
        return j.query(since=since, until=until, namespace=namespace, kind=kind, name=name, limit=limit)

    def graph_at(self, graph_type: str, namespaces: list[str] | None, window_s: float, end: float) -> GraphResult:
        """The graph of a window ending at `end` (time travel; meshscope.time_travel)."""
        from meshscope.time_travel import graph_result
        return graph_result(self, graph_type, namespaces, window_s, end)

    def graph_diff(self, graph_type: str, namespaces: list[str] | None, window_s: float, before_end: float,
                   after_end: float) -> dict[str, Any]:
        from meshscope.time_travel import graph_diff
        return graph_diff(self, graph_type, namespaces, window_s, before_end, after_end)

    def _with_changes(self, found: list[dict[str, Any]]) -> None:
        """Rank the changes before each finding's onset (one journal query for all findings)."""
        from diagnose.changes import LOOKBACK_S, annotate
        onsets = [f.get("opened_at") or f["first_seen"] for f in found if f.get("first_seen")]
        j = self.journal() if onsets else None
        if j is None:
            return
        try:
            annotate(found, j.query(since=min(onsets) - LOOKBACK_S, until=max(onsets) + 5, limit=5000))
        except Exception:  # noqa: BLE001 - a broken journal must not hide the findings
            log.exception("ranking changes for findings failed")

    def finding(self, fingerprint: str) -> dict[str, Any] | None:
        f = self.stack.diagnoser.finding(fingerprint)
        if f is None:
            return None
        out = f.to_dict()
        out["elements"] = _toucher(self._elements_or_none())(out)
        objects = {o.key: o for o in self.backend.snapshot().objects}
        excerpts = []
        for ref in [f.resource, *f.related]:
            if ref is None:
                continue
            obj = objects.get((ref.kind, ref.namespace, ref.name))
            if obj is not None:
                excerpts.append(_excerpt(obj, ref.path or ""))
        out["yaml_excerpts"] = excerpts
        self._with_changes([out])
        return out

    def state_as_of(self) -> float | None:
        """When the diagnoser's latest cycle ran (the findings and SLOs served are its state), epoch s."""
        diagnoser = getattr(self.stack, "diagnoser", None)
        at = (getattr(diagnoser, "last_evaluation", None) or {}).get("time")
        return float(at) if at is not None else None

    def retention_s(self) -> float:
        """How far back a page's window may end (`?end=`): the telemetry store's window when the graphs read that
        store (the bundled mesh), else 24 h (a cluster's Prometheus keeps what it keeps; 24 h is the bound asked)."""
        store = getattr(self.stack, "store", None)
        if store is not None and getattr(self.backend, "store", None) is store:
            return float(store.window_s)
        return 86400.0

    def slos(self, end: float | None = None) -> list[dict[str, Any]]:
        """SLO status now, or at `end` (time travel: the budgets' event history is kept for the SLO period)."""
        return self.stack.diagnoser.slo_status() if end is None else self.stack.diagnoser.slo_status(now=end)

    # ---- traces ---------------------------------------------------------------------------
    def _spans(self, window_s: float = 900.0, end: float | None = None, trace_id: str | None = None,
                columns: list[str] = _SPAN_COLUMNS) -> pd.DataFrame:
        """Spans that started in the window (of one trace), only `columns`: the trace list's summary needs no
        attributes, and converting 15 minutes of them to Python objects was most of its cost."""
        from collector.query import spans

        df = spans(self.stack.store, window_s, self.now() if end is None else end, trace_id, columns)
        if df.empty:
            return pd.DataFrame(columns=columns)
        df = df.reindex(columns=columns)
        for col in ("start_time", "end_time"):
            if col in df and pd.api.types.is_datetime64_any_dtype(df[col]):
                df[col] = df[col].astype("int64") / 1e9
        for col in ("trace_id", "span_id", "parent_span_id", "service_name", "name", "kind", "status_code", "response_flags"):
            if col in df:
                df[col] = df[col].fillna("").astype(str)
        return df

    def traces(self, filters: TraceFilters) -> list[dict[str, Any]]:
        """The trace list: summaries kept per ten seconds of span starts, only new spans summarised per request
        (`meshscope.trace_list`); concurrent requests share one computation that started after they arrived, so
        a live list holds the traces that arrived up to the request (test_browser_live)."""
        from dashboard.trace_summary import select_traces

        if filters.status not in TRACE_STATUSES:
            raise QueryError("status", f"unknown status {filters.status!r} (known: {', '.join(TRACE_STATUSES)})")
        if filters.end is not None and filters.end > self.now() + 1:
            raise QueryError("end", "must not be in the future")
        window = float(filters.window_s or 900.0)
        end = filters.end
        parts = self._trace_list.parts(("traces", window, end),
                                       lambda: window_bounds(window, self.now() if end is None else end))
        return select_traces(parts, filters)

    def trace(self, trace_id: str, end: float | None = None) -> list[dict[str, Any]] | None:
        """The spans of one trace of the last 15 min, or (time travel) of the 15 min before `end` and a minute after."""
        from dashboard.snapshot_source import _order_spans

        spans = (self._spans(trace_id=trace_id) if end is None
                 else self._spans(960.0, min(end + 60.0, self.now()), trace_id=trace_id))
        if spans.empty:
            return None
        return _order_spans(spans.sort_values("start_time").to_dict("records"))

    # ---- config, scenarios, reports -------------------------------------------------------
    def config_objects(self) -> list[dict[str, Any]]:
        """Every config object with the codes of the open findings naming it and their YAML lines marked.

        `yaml` is the object as written in its file when that file is readable (else a dump
        of what was applied); `lines` maps YAML paths to lines of that text and `highlight`
        holds the lines of the findings' paths, so the Config page marks the offending field.
        """
        findings = self.stack.diagnoser.findings({"status": "open"})
        files: dict[str, list[str] | None] = {}
        out = []
        for o in self.backend.snapshot().objects:
            refs = [(f, r) for f in findings for r in [f.resource, *f.related]
                    if r is not None and (r.kind, r.namespace, r.name) == o.key]
            text, _, lines, line_of = _object_text(o, files)
            marks = sorted({line for line in (line_of(r.path) for _, r in refs if r.path) if line})
            out.append({"api_version": o.api_version, "kind": o.kind, "namespace": o.namespace, "name": o.name,
                        "source": str(o.source) if o.source else None, "yaml": text, "lines": lines,
                        "findings": list(dict.fromkeys(f.code for f, _ in refs)), "highlight": marks})
        return out

    def _mesh(self) -> Any:
        mesh = getattr(self.backend, "mesh", None)
        if mesh is None:
            raise Unavailable("scenarios need the bundled mesh (`meshscope up`)")
        return mesh

    def notices(self) -> list[str]:
        """The backend's one-line warnings for the overview (e.g. Istio config not visible from this cluster)."""
        fn = getattr(self.backend, "notices", None)
        return list(fn()) if callable(fn) else []

    def scenarios(self) -> list[dict[str, Any]]:
        mesh = getattr(self.backend, "mesh", None)
        if mesh is None:
            return []
        from mesh.scenarios import SCENARIOS

        active = mesh.scenario
        return [{"name": sc.name, "description": sc.description, "active": sc.name == active} for sc in SCENARIOS]

    def apply_scenario(self, name: str | None) -> None:
        mesh = self._mesh()
        if name:
            try:
                mesh.apply_scenario(name)
            except KeyError as exc:
                raise QueryError("name", str(exc).strip("'\"")) from None
        else:
            mesh.clear_scenario()
        with self._lock:  # every cached graph is due: the next read of a view answers at once and refreshes it
            self._config += 1

    def report(self, fmt: str) -> tuple[bytes, str]:
        from diagnose.reports.render import render
        from diagnose.reports.build import build_snapshot
        from topology import to_cytoscape

        if fmt not in REPORT_FORMATS:
            raise QueryError("format", f"unsupported report format {fmt!r} (supported: {', '.join(REPORT_FORMATS)})")
        now = self.now()
        _, graph = self._build("workload", None, DEFAULT_WINDOW_S * 5)
        try:  # before/after: the window before this one, and the config changes between (issue #14)
            from meshscope.time_travel import graph_diff  # the view's graph is the "after": built once, not twice
            before_after = graph_diff(self, "workload", None, DEFAULT_WINDOW_S * 5, now - DEFAULT_WINDOW_S * 5, now,
                                      after=graph)
        except Exception:  # noqa: BLE001 - the report still renders without the comparison
            log.exception("before/after comparison for the report failed")
            before_after = None
        snap = build_snapshot(self.stack.diagnoser.findings({"status": "open"}), graph=to_cytoscape(graph),
                              slos=self.slos(), config_objects=self.backend.snapshot().objects,
                              window=(now - DEFAULT_WINDOW_S * 5, now), generated_at=now,
                              source=f"meshscope ({self.backend.name})", before_after=before_after)
        types = {"html": "text/html; charset=utf-8", "md": "text/markdown; charset=utf-8",
                 "json": "application/json", "pdf": "application/pdf"}
        return render(snap, fmt), types[fmt]


# ---- helpers (pure functions over element dicts and rate frames) -----------------------------
def _stand_in_s(built: _Built) -> float:
    """How old a view's latest graph may be and still answer while its refresh runs.

    `_STALE_S`, or twice the graph's own build time when that is longer: on a starved machine a
    request that waited for the build would get numbers hardly fresher than these, only late.
    """
    return max(_STALE_S, 2 * built.seconds)


def _find_element(elements: list[dict[str, Any]], element_id: str) -> dict[str, Any] | None:
    return next((e["data"] for e in elements if e["data"].get("id") == element_id), None)


def _toucher(elements: list[dict[str, Any]]) -> Callable[[dict[str, Any]], list[str]]:
    """A function giving the graph element ids a finding is about: its evidence edges' ends and the edges between
    them, else its resource's workloads. The graph is indexed once for all findings of a layout."""
    by_workload: dict[tuple, str] = {}
    by_app: dict[tuple, list[str]] = {}
    by_service: dict[Any, list[str]] = {}  # (namespace, name) and the bare name (a ServiceEntry host)
    out_edges: dict[str, list[tuple[str, str]]] = {}
    for e in elements:
        d = e["data"]
        if "source" in d:
            out_edges.setdefault(d["source"], []).append((d["target"], d["id"]))
        elif d.get("type") == "workload":
            by_workload[(d.get("namespace"), d.get("workload") or d.get("name"))] = d["id"]
            if d.get("app"):
                by_app.setdefault((d.get("namespace"), d["app"]), []).append(d["id"])
        elif d.get("type") == "service" and (name := d.get("service") or d.get("name")):
            by_service.setdefault((d.get("namespace"), name), []).append(d["id"])
            by_service.setdefault(name, []).append(d["id"])

    def touched(finding: dict[str, Any]) -> list[str]:
        hit: set[str] = set()
        for edge in (finding.get("evidence") or {}).get("edges") or []:
            src = by_workload.get((edge.get("source_namespace"), edge.get("source_workload")))
            dest = str(edge.get("destination") or "")
            parts = dest.split(".")
            name_ns = (parts[1], parts[0]) if len(parts) >= 2 else None
            dst_ids = by_app.get(name_ns, [])
            if dest_wl := edge.get("destination_workload"):
                dst_ids = [i for i in [by_workload.get((name_ns[0] if name_ns else None, dest_wl))] if i] or dst_ids
            else:  # requests that failed before reaching a workload (no mTLS peer, no endpoint) end at the service
                dst_ids = dst_ids + by_service.get(name_ns, []) + by_service.get(dest, [])
            if src:
                hit.add(src)
                wanted = set(dst_ids)
                hit.update(i for target, i in out_edges.get(src, ()) if target in wanted)
            hit.update(dst_ids)
        if not hit:
            r = finding.get("resource") or {}
            host = str(r.get("name") or "").split(".")[0]
            hit.update(by_app.get((r.get("namespace"), host), []))
        return sorted(hit)

    return touched


def _file_lines(file: str, cache: dict[str, list[str] | None]) -> list[str] | None:
    if file not in cache:
        try:
            cache[file] = Path(file).read_text(errors="replace").splitlines()
        except OSError:
            cache[file] = None
    return cache[file]


def _object_text(obj: Any, cache: dict[str, list[str] | None]):
    """(yaml text, first line's number in its file, {path: line in the text}, path -> line in the text or 0).

    From its source file when readable (the document starting at `source.line`, up to the next
    `---`), else a YAML dump of the object re-read by the config loader for its line map
    (objects applied through the API or a scenario, or a file that moved since).
    """
    src = obj.source
    text = _file_lines(src.file, cache) if src and src.file and src.line else None
    if text is not None and 0 < src.line <= len(text):
        start = src.line - 1
        end = start + 1
        while end < len(text) and not text[end].startswith("---"):
            end += 1
        body = text[start:end]
        while body and not body[-1].strip():
            body.pop()
        inside = lambda n: n - start if 0 < n - start <= len(body) else 0  # noqa: E731
        lines = {p: inside(n) for p, n in obj.lines.items() if inside(n)}
        return "\n".join(body), src.line, lines, lambda path: inside(obj.line_of(path))
    import yaml

    from mesh.config import load_text

    dumped = yaml.safe_dump(obj.raw or {"apiVersion": obj.api_version, "kind": obj.kind,
                                        "metadata": {"name": obj.name, "namespace": obj.namespace},
                                        "spec": obj.spec}, sort_keys=False)
    reread = load_text(dumped, f"{obj.kind}-{obj.name}.yaml").objects
    if not reread:
        return dumped, 1, {}, lambda path: 0
    again = reread[0]
    return dumped, 1, dict(again.lines), again.line_of


def _excerpt(obj: Any, path: str) -> dict[str, Any]:
    """The object's YAML (as written in its file when there is one, numbered as there) with the finding's line marked."""
    text, first, _, line_of = _object_text(obj, {})
    lines = [[first + i, t] for i, t in enumerate(text.splitlines())]
    line = line_of(path) if path else 0
    ref = f"{obj.kind} {obj.namespace}/{obj.name}" if obj.namespace else f"{obj.kind} {obj.name}"
    src = obj.source
    return {"ref": ref, "path": path or None, "source": str(src) if src else None, "lines": lines,
            "highlight": [first + line - 1] if line else []}


def _mark_restarts(nodes: list[dict[str, Any]], restarts: dict[tuple[str, str], int]) -> None:
    """A workload node whose sidecar crashed carries its restart count (side panel, `restarts-N` badge)."""
    if not restarts:
        return
    for n in nodes:
        count = restarts.get((n.get("namespace") or "", n.get("name") or "")) if n.get("type") == "workload" else None
        if count:
            n["restarts"] = count
            n["badges"] = [*n.get("badges", []), "restarted"]
