"""Findings are laid out once per state and never answered with a previous state (#18).

The layout of the findings (graph elements, ranked config changes) is made off the request path after each
diagnoser cycle and kept with the state it was made from. A request made right after the state moved on (a
cycle opened or resolved a finding, a scenario was applied, the config journal or the links graph changed)
must get that new state's layout, which is what an uncached layout of the same state gives; concurrent
requests for a state not laid out yet share one layout. The parts are real: the live diagnoser and its
tracker, a sqlite config journal, the graph builder over a recorded rate frame, the HTTP server and the
Overview page's Dash callback as the browser calls it.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import httpx
import pytest

from bench.bench_load import page_body  # the request the browser sends to render a page
from dashboard.server import start
from diagnose.catalog import make
from diagnose.findings import ResourceRef
from diagnose.live import LiveDiagnoser, LiveSources
from mesh.journal import Journal
from tests.meshscope.pinned import PinnedSource
from tests.meshscope.test_element_metrics import WINDOW, RecordedBackend, recorded_frame
from tests.util import wait_until

OPEN = {"status": "open"}


def denial(service: str, namespace: str = "bookinfo"):
    f = make("MS3012", resource=ResourceRef("Service", service, namespace), source="reviews-v2",
             destination=f"{service}.{namespace}.svc.cluster.local", count=5, total=5, policy="deny-all")
    f.evidence = {"edge_key": f"{service}.{namespace}.svc.cluster.local"}
    return f


class Mesh:
    """The bundled mesh's config side as the source sees it: applying a scenario records a change in the journal."""

    def __init__(self, journal: Journal, clock):
        self.journal, self.clock, self.scenario = journal, clock, None

    def apply_scenario(self, name: str) -> None:
        self.scenario = name
        self.journal.observe("DestinationRule", "bookinfo", f"{name}-dr", {"spec": {"host": "ratings"}},
                             who="scenario", at=self.clock())

    def clear_scenario(self) -> None:
        self.journal.observe("DestinationRule", "bookinfo", f"{self.scenario}-dr", None, deleted=True,
                             who="scenario", at=self.clock())
        self.scenario = None


@pytest.fixture
def live(tmp_path):
    """(source, diagnoser, the findings the next cycle sees): a real diagnoser whose cycles the test runs."""
    backend = RecordedBackend(recorded_frame())
    src = PinnedSource(SimpleNamespace(backend=backend), at=1_800_000_000.0)
    journal = Journal(tmp_path / "journal.sqlite", clock=lambda: src.at)
    backend.mesh = Mesh(journal, lambda: src.at)
    current: list = []
    diag = LiveDiagnoser(LiveSources(extra=lambda now: [f() for f in current]), resolve_after=1, clock=lambda: src.at)
    diag.subscribe(src.refresh_findings)  # as the stack wires it
    src.stack.diagnoser = diag
    yield src, diag, current
    wait_until(lambda: not src._relayout_running, timeout=30, what="the last background layout")
    journal.close()


def _codes(found) -> list[tuple[str, str]]:
    return sorted((f["code"], f["resource"]["name"]) for f in found)


def _uncached(src, filters) -> list:
    return src._lay_out_findings(dict(filters))


def _changes(found) -> list[list]:
    return [[c["seq"] for c in f.get("changes") or []] for f in found]


def test_a_read_just_after_any_state_change_gets_that_state(live):
    src, diag, current = live
    states = []

    def check(what: str):
        for filters in (OPEN, {}):
            got = src.findings(filters)  # at once after the change: the background layout may not have run yet
            want = _uncached(src, filters)
            assert (_codes(got), _changes(got), [f["elements"] for f in got]) == \
                   (_codes(want), _changes(want), [f["elements"] for f in want]), what
        states.append((_codes(src.findings(OPEN)), _changes(src.findings(OPEN))))

    check("before any cycle")
    version = [0]
    for _ in range(3):  # each kind of change, more than once (a race shows in some rounds only)
        current[:] = [lambda: denial("ratings")]
        src.at += 3
        diag.evaluate()
        check("a cycle opened a finding")
        assert [c for c, _ in states[-1][0]] == ["MS3012"]
        current.append(lambda: denial("details"))
        src.at += 3
        diag.evaluate()
        check("a cycle opened a second finding")
        src.apply_scenario("fault-abort")  # a config change at the findings' onset: ranked for them at once
        check("a scenario was applied")
        assert states[-1][1] != states[-2][1]
        version[0] += 1  # a watch delivers a change of the finding's own service, from before its onset
        src.backend.mesh.journal.observe("Service", "bookinfo", "ratings", {"spec": {"v": version[0]}}, at=src.at - 1)
        check("the journal recorded a change")
        assert states[-1][1] != states[-2][1]
        src.apply_scenario(None)
        current[:] = []
        src.at += 3
        diag.evaluate()
        check("a cycle resolved every finding")
        assert states[-1][0] == []


def test_the_links_graph_moving_on_moves_the_findings_elements(live):
    src, diag, current = live
    backend = src.backend
    full = backend.frame
    backend.frame = full.iloc[0:0]  # no traffic yet: the finding links to nothing
    current[:] = [lambda: denial("svc1", "ns1")]  # a service of the recorded traffic
    diag.evaluate()
    assert src.findings(OPEN)[0]["elements"] == []
    backend.frame = full  # traffic arrives; the next build of the links graph holds the finding's nodes
    src.at += 10
    wait_until(lambda: src._entry("workload", (), 60.0).at == src.at, timeout=30, what="the links graph rebuilt")
    got = src.findings(OPEN)
    assert got[0]["elements"] and got[0]["elements"] == _uncached(src, OPEN)[0]["elements"]


def test_one_state_is_laid_out_once_and_each_caller_owns_its_copy(live):
    src, diag, current = live
    current[:] = [lambda: denial("ratings")]
    diag.evaluate()
    first = src.findings(OPEN)
    wait_until(lambda: not src._relayout_running, timeout=30, what="the cycle's background layout")
    layouts = src.findings_layouts
    first[0]["elements"].append("mutated by a caller")
    again = [src.findings(OPEN) for _ in range(5)]
    assert src.findings_layouts == layouts  # the same state: answered from its layout
    assert all(a == again[0] and "mutated by a caller" not in a[0]["elements"] for a in again)


def test_concurrent_reads_of_a_new_state_share_one_layout(live):
    src, diag, current = live
    src.findings(OPEN)
    wait_until(lambda: not src._relayout_running, timeout=30, what="the first background layout")
    src.stack.diagnoser = None  # no subscriber: the reads alone lay the new state out
    real = diag.findings
    held, started = threading.Event(), []

    def slow_findings(filters=None, **kw):  # the layout of the new state takes as long as the test says
        started.append(1)
        assert held.wait(60), "the test never released the layout"
        return real(filters, **kw)

    current[:] = [lambda: denial("ratings")]
    src.at += 3
    diag.evaluate()
    diag.findings = slow_findings
    src.stack.diagnoser = diag
    layouts = src.findings_layouts
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(src.findings, OPEN) for _ in range(8)]
        wait_until(lambda: len(started) == 1, timeout=10, what="the one layout")
        held.set()
        results = [f.result(timeout=30) for f in futures]
    assert len(started) == 1 and src.findings_layouts == layouts + 1
    assert all(_codes(r) == [("MS3012", "ratings")] for r in results)


def test_an_overview_load_just_after_recovery_never_shows_the_resolved_finding(live):
    """The one-shot page load of the back-to-live check: over HTTP, through the Dash callback the browser calls."""
    src, diag, current = live
    ui = start(src, port=0)
    try:
        with httpx.Client(base_url=ui.url, timeout=30, headers={"X-Meshscope-CSRF": "1"}) as client:
            def overview() -> str:
                r = client.post("/_dash-update-component", content=page_body("/"),
                                headers={"Content-Type": "application/json"})
                assert r.status_code == 200
                return r.text
            for _ in range(3):
                current[:] = [lambda: denial("ratings")]
                src.at += 3
                diag.evaluate()
                page = overview()
                assert "MS3012" in page and "No open findings" not in page and "No open incidents" not in page
                assert [f["code"] for f in client.get("/api/v1/findings", params=OPEN).json()] == ["MS3012"]
                current[:] = []  # recovery: the next cycle resolves it
                src.at += 3
                diag.evaluate()
                page = overview()
                assert "No open findings" in page and "No open incidents" in page and "MS3012" not in page
                assert client.get("/api/v1/findings", params=OPEN).json() == []
    finally:
        ui.stop()
