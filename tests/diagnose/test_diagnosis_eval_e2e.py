"""The diagnosis evaluation on the shared mesh: every scenario and every held-out fault, first answer = the cause.

For each case (the 12 built-in scenarios and the faults in tests/fixtures/faults, which nobody tuned the
diagnoser to), the healthy mesh gets the fault; the case counts as found when the top incidents (as many as
the case has causes) are headed by the expected runtime code, name the expected config object and the hurt
edge. Any other open error or warning incident seen during the case is an unexpected finding. Prints
`diagnosis: rank-1 cause N/M, unexpected findings K, median time-to-cause S s` and fails below M/M or above 0.
Every cause found must resolve once the mesh is reset. A built-in scenario's case also checks its finding in
full while it is applied (category, caller, flags, impact, blamed object's file:line, its config codes linked):
that was tests/diagnose/runtime/test_scenarios_e2e.py's per-scenario test, which applied each scenario again.

A second test runs the healthy mesh under steady traffic with a CPU hog beside it, plus 30 requests to random
paths through the ingress gateway (a scanner): no error or warning finding may open. The issue asks 5 minutes:
`python -m bench soak` runs those 5 minutes on a mesh of its own and prints the count; the suite reads 30 s
(HEALTHY_S) so it stays fast on CI.

Telemetry comes through the composition root's collector (the `stack` fixture's store); a dedicated live
diagnoser with a short window reads it. Its window never reaches back past the instant the mesh was last put
back to its healthy baseline (`CaseDiagnoser.healthy_from`): one case's failures are out of the next case's
window at once instead of sliding out over a whole window (on a quiet box that wait was most of the module's
wall time). Each case still starts from an open-finding-free diagnoser whose latest evaluation read at least
HEALTHY_PREFIX_S of healthy traffic, and every incident open during the case counts. Time-to-cause is
therefore measured from a window holding a few seconds of healthy traffic before the fault, not a full one.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from diagnose.incidents import group
from diagnose.live import LiveDiagnoser, LiveSources
from mesh.scenarios import SCENARIOS
from tests.fixtures.faults import Expect, load_faults
from tests.util import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SERIOUS = ("error", "warning")
WINDOW_S = 8.0  # the diagnoser's window once a case has run that long
HEALTHY_PREFIX_S = 2.0  # healthy traffic read (window length) before a fault goes in
RESET_SLACK_S = 0.5  # after the baseline's push is acknowledged: requests begun before it are not the next case's
FIND_TIMEOUT_S = 90.0  # a deadline: quiet-box causes are found in 2-8 s; at load 100 latency-regression took 37-45+ s
OBSERVE_S = 3.0  # after the cause is found, keep watching for unexpected incidents
HEALTHY_S = 30.0  # the healthy check's length in the suite (bench soak: the 5 minutes)


def scenario_expectations(sc) -> tuple[Expect, ...]:
    runtime = [c for c in sc.expected_codes if c.startswith("MS3")]
    code = runtime[0] if runtime else sc.expected_codes[0]
    return (Expect(code=code, blame=sc.blame or "", destination=sc.edge[1] if runtime else "", callers=(sc.edge[0],)),)


# canary scenarios (MS5010-MS5019) are judged by the stack's canary source, not by this module's diagnoser
CASES = [("scenario", sc.name, sc, scenario_expectations(sc)) for sc in SCENARIOS
         if not sc.expected_codes[0].startswith("MS501")] + \
        [("fault", f.name, f, f.expect) for f in load_faults()]


class CaseDiagnoser(LiveDiagnoser):
    """The live diagnoser whose window starts no earlier than `healthy_from` (epoch s; see the module doc).

    Until a full WINDOW_S has passed since then the window is shorter; the inference from scraped
    metrics (used only when the window has no access-log rows) is off meanwhile, since a rate over a
    fraction of a scrape interval would count the previous case's failures scraped after the reset."""

    healthy_from = 0.0

    def _current(self, now: float) -> list:
        end = now - self.ingest_lag_s
        self.window_s = max(0.1, min(WINDOW_S, end - self.healthy_from))  # only this loop's thread reads it
        return super()._current(now)


def mark_healthy(d: CaseDiagnoser) -> None:
    """The mesh is back to its healthy baseline (reset returned): nothing before this is read again."""
    d.healthy_from = time.time() + RESET_SLACK_S


@pytest.fixture(scope="module")
def diag(stack_diagnoser_paused, bundled_mesh):
    """This module's diagnoser over the session stack's store; the stack's own diagnoser, whose findings nothing
    here reads, is paused meanwhile (it took CPU and the GIL from this one at every fault)."""
    from collector.query import istio_rates

    stack = stack_diagnoser_paused

    sources = LiveSources.from_store(stack.store, snapshot=bundled_mesh.snapshot)
    # max_busy_share: a case waits for cycles (a cause opens on one, resolves after two clean ones); the product
    # pauses 4x a cycle's CPU after it so a UI keeps answering, and this diagnoser has no UI: half a core may go to it
    d = CaseDiagnoser(sources, interval_s=0.5, window_s=WINDOW_S, ingest_lag_s=0.5, resolve_after=2,
                      max_busy_share=0.5)
    # the floor is exact for rows (a window shorter than 0.1 s would otherwise reach back past it)
    sources.requests = lambda start, end: stack.store.requests(max(start, d.healthy_from), end)
    sources.rates = lambda window, end: istio_rates(stack.store, window, end) if window >= WINDOW_S else None
    d.start()
    yield d
    d.stop()


def serious_open(d) -> list:
    return [f for f in d.findings(status="open") if f.severity in SERIOUS]


def window_length(d) -> float:
    w = d.last_evaluation.get("window") or {}
    return w.get("end", 0.0) - w.get("start", 0.0)


def wait_healthy(d, timeout: float = 90.0) -> None:
    """No serious finding open, then a fresh evaluation over >= HEALTHY_PREFIX_S of healthy traffic that found none.

    One is enough: each evaluation reads the whole window since `healthy_from` (a finding opens on first
    sight), and whatever the last case left open closed only after two evaluations of clean windows.
    Evaluations are the expensive unit on a loaded box (each waits for its share of a core), not seconds."""
    wait_until(lambda: not serious_open(d), timeout=timeout, interval=0.2,
               what=f"a healthy mesh (still open: {[(f.code, f.message[:80]) for f in serious_open(d)]})")
    start = d.last_evaluation.get("count", 0)
    wait_until(lambda: d.last_evaluation.get("count", 0) >= start + 1 and window_length(d) >= HEALTHY_PREFIX_S
               and not serious_open(d), timeout=120, interval=0.1,
               what=f"an evaluation over {HEALTHY_PREFIX_S} s of healthy traffic (last took "
               f"{d.last_evaluation.get('seconds')} s, window {window_length(d):.1f} s, open "
               f"{[f.code for f in serious_open(d)]})")


def satisfies(inc, want: Expect) -> bool:
    root = inc.root
    if root.code != want.code:
        return False
    if want.blame:
        r = root.resource
        if r is None or f"{r.kind} {r.namespace}/{r.name}" != want.blame or not r.source:
            return False
    if want.destination:
        if root.evidence.get("edge_key") != want.destination:
            return False
        callers = {e.get("source_workload") for e in [*root.evidence.get("edges", []),
                                                       *root.evidence.get("client_edges", [])]}
        if not callers & set(want.callers):
            return False
    return True


def matched(incidents, expect: tuple[Expect, ...]) -> list | None:
    """The top len(expect) incidents, each satisfying a different expectation; None when not (yet)."""
    top = incidents[:len(expect)]
    if len(top) < len(expect):
        return None
    free = list(expect)
    for inc in top:
        hit = next((w for w in free if satisfies(inc, w)), None)
        if hit is None:
            return None
        free.remove(hit)
    return top


def run_case(mesh, d, kind: str, obj) -> None:
    if kind == "scenario":
        mesh.apply_scenario(obj.name)
    else:
        mesh.apply(obj.objects)


# what kind of problem each runtime scenario is, as an operator would file it (default: runtime)
CATEGORY = {"mtls-mismatch": "mtls", "missing-subset": "route", "unknown-host": "route", "rbac-deny": "security"}


def callers_of(f) -> set[str]:
    return {e.get("source_workload") for e in f.evidence.get("edges", []) + f.evidence.get("client_edges", [])}


def check_scenario_evidence(d, sc) -> None:
    """A built-in scenario's finding in full, while it is applied: category, caller, flags, impact, blamed object
    with its file:line, and every config code the scenario declares open and linked to the runtime finding.

    (These were tests/diagnose/runtime/test_scenarios_e2e.py's per-scenario test, which applied every scenario a
    second time; the scenario is applied once, here, and both modules' assertions are made on it.)"""
    want = [c for c in sc.expected_codes if c.startswith("MS3")]
    if not want:  # a config-only scenario: its config finding is the case's expectation, checked by matched()
        return
    dst = sc.edge[1]
    # the finding about the scenario's edge (a slow service also makes its callers slow: those are extra)
    found = wait_until(lambda: [f for f in d.findings(status="open") if f.code in want
                                and f.evidence.get("edge_key") == dst], timeout=30, interval=0.1,
                       what=f"{want} on {dst} for {sc.name}")
    f = next(x for x in found if x.code == want[0])
    assert f.category == CATEGORY.get(sc.name, "runtime"), (sc.name, f.category)
    # the caller is named once its own sidecar's lines are in (the server side may be read first and knows only
    # the peer's service account): evidence is refreshed every evaluation, so poll the open finding for it
    f = wait_until(lambda: (x := d.finding(f.fingerprint)) is not None and x.status == "open"
                   and sc.edge[0] in callers_of(x) and x, timeout=30, interval=0.1,
                   what=f"{sc.edge[0]} among the callers of {f.code} (first seen: {sorted(callers_of(f))})")
    for flag in sc.expected_flags:
        assert flag in f.evidence.get("response_flags", {}), (sc.name, f.evidence.get("response_flags"))
    assert f.impact["rps"] > 0 and 0 < f.impact["share"] <= 1, (sc.name, f.impact)
    if sc.blame:
        kind, ref = sc.blame.split(" ", 1)
        ns, name = ref.split("/")
        blamed = [x for x in found if x.resource and (x.resource.kind, x.resource.namespace, x.resource.name)
                  == (kind, ns, name)]
        assert blamed, (sc.blame, [(x.code, x.resource) for x in found])
        assert blamed[0].resource.source, "the blamed object points at its file:line"
    config_codes = [c for c in sc.expected_codes if c[:3] in ("MS1", "MS2")]
    if config_codes:
        wait_until(lambda: {c["code"] for x in d.findings(status="open") if x.code in want
                            for c in x.evidence.get("config_findings", [])} >= set(config_codes),
                   timeout=30, interval=0.1, what=f"{config_codes} linked to {want} for {sc.name}")
        assert {x.code for x in d.findings(status="open")} >= set(config_codes)


RESULTS: dict[str, dict] = {}  # case name -> {found, seconds, unexpected, note}; summarised by the last test


@pytest.mark.parametrize("kind, name, obj, expect", CASES, ids=[c[1] for c in CASES])
def test_case_first_answer_is_the_cause(bundled_mesh, diag, kind, name, obj, expect):
    """One case: healthy mesh, apply the fault, the top incidents must be its causes (recorded for the summary)."""
    RESULTS[name] = {"found": False, "seconds": None, "unexpected": {}, "note": "did not finish"}
    clock = [time.monotonic()]
    phases: dict[str, float] = {}  # where the case's wall time went (printed with its line)

    def phase(what: str) -> None:
        now = time.monotonic()
        phases[what] = round(phases.get(what, 0.0) + now - clock[0], 1)
        clock[0] = now

    try:
        wait_healthy(diag)
    except AssertionError as exc:  # recorded as a miss; the summary fails, later cases still run
        bundled_mesh.reset()
        mark_healthy(diag)
        RESULTS[name]["note"] = f"not healthy before the fault: {exc}"
        pytest.fail(RESULTS[name]["note"])
    phase("healthy")
    t0 = time.monotonic()
    try:
        hit, elapsed, strays = None, None, {}
        run_case(bundled_mesh, diag, kind, obj)  # inside: a rejected or half-applied fault is reset too
        phase("apply")
        deadline = t0 + FIND_TIMEOUT_S
        while time.monotonic() < deadline:
            incidents = group(diag.findings(status="open"))
            top = matched(incidents, expect)
            if top is not None and hit is None:
                hit, elapsed = top, time.monotonic() - t0
                phase("find")
                deadline = time.monotonic() + OBSERVE_S
            if hit is not None:
                ids = {i.id for i in hit}
                for i in incidents:
                    if i.id not in ids and i.severity in SERIOUS:
                        strays[i.id] = f"{i.root.code} {i.root.message[:100]}"
            time.sleep(0.2)  # polling interval of a deadline loop, not synchronisation
        phase("observe" if hit is not None else "find")
        if hit is None:
            incidents = group(diag.findings(status="open"))
            RESULTS[name]["note"] = f"top = {[(i.root.code, i.cause.label() if i.cause else None, i.root.evidence.get('edge_key')) for i in incidents[:3]]}"
        else:
            RESULTS[name].update(found=True, seconds=elapsed, unexpected=strays, note="")
        if hit is not None and kind == "scenario":
            check_scenario_evidence(diag, obj)  # while the fault is still in: its config findings stay open
            phase("evidence")
    finally:
        bundled_mesh.reset()
        mark_healthy(diag)
        phase("reset")
    print(f"\n{'ok  ' if hit else 'MISS'} {name}: {RESULTS[name]}; phases (s) {phases}", flush=True)
    assert hit is not None, RESULTS[name]["note"]
    assert not strays, strays
    # every cause found resolves once the mesh is back to its baseline
    for fp in [i.root.fingerprint for i in hit]:
        wait_until(lambda: (x := diag.finding(fp)) is not None and x.status == "resolved", timeout=90, interval=0.2,
                   what=f"{fp} resolved after resetting {name}")
        assert diag.finding(fp).resolved_at is not None
    phase("resolve")
    print(f"{name} resolved: phases (s) {phases}", flush=True)


def test_summary_rank_1_cause_unexpected_and_time_to_cause():
    """The line the issue asks for, over every case above (run the module as a whole)."""
    if len(RESULTS) < len(CASES):
        pytest.skip("the summary needs every case of this module to have run")
    found = sum(r["found"] for r in RESULTS.values())
    unexpected = sum(len(r["unexpected"]) for r in RESULTS.values())
    times = [r["seconds"] for r in RESULTS.values() if r["seconds"] is not None]
    median = statistics.median(times) if times else float("nan")
    print(f"\ndiagnosis: rank-1 cause {found}/{len(CASES)}, unexpected findings {unexpected}, "
          f"median time-to-cause {median:.1f} s")
    assert found == len(CASES), {n: r["note"] for n, r in RESULTS.items() if not r["found"]}
    assert unexpected == 0, {n: r["unexpected"] for n, r in RESULTS.items() if r["unexpected"]}


def test_a_healthy_mesh_on_a_busy_machine_raises_nothing_and_scanners_are_information(bundled_mesh, diag):
    wait_healthy(diag)
    duration = HEALTHY_S
    hog = subprocess.Popen([sys.executable, "-c",  # one core busy for the whole check, bounded in time
                            f"import time\nend = time.time() + {duration + 5}\nwhile time.time() < end: pass"])
    try:
        with httpx.Client(base_url=bundled_mesh.gateway_url, timeout=5) as client:
            codes = {client.get(f"/{uuid.uuid4().hex[:8]}/{i}").status_code for i in range(30)}
        assert codes == {404}
        seen: dict[str, str] = {}
        scanner_info = []
        end = time.monotonic() + duration
        while time.monotonic() < end:
            for f in diag.findings(status="open"):
                if f.severity in SERIOUS:
                    seen[f.fingerprint] = f"{f.severity} {f.code} {f.message[:120]}"
                elif f.code == "MS3005":
                    scanner_info.append(f)
            time.sleep(0.5)  # polling interval of a deadline loop, not synchronisation
    finally:
        hog.kill()
        hog.wait()
    print(f"\nhealthy for {duration:.0f} s beside a CPU hog: {len(seen)} error/warning findings opened")
    assert not seen, list(seen.values())
    # the scanner's 404s, if reported at all, are information about outside traffic, never a gateway route error
    assert all(f.evidence.get("outside_traffic") for f in scanner_info)
