"""The live loop's scheduling: unchanged inputs are not re-diagnosed, changed ones are, and the API reads state."""
from __future__ import annotations

from collector.store import TelemetryStore
from diagnose.live import LiveDiagnoser, LiveSources
from tests.util import wait_until


def _diagnoser(version, **kw) -> LiveDiagnoser:
    store = TelemetryStore()
    return LiveDiagnoser(LiveSources.from_store(store), interval_s=0.02, data_version=version, **kw)


def test_unchanged_inputs_skip_cycles_and_a_change_runs_one():
    state = {"v": 1}
    diag = _diagnoser(lambda: state["v"], idle_interval_s=3600).start()
    try:
        wait_until(lambda: diag.skipped_cycles >= 5, timeout=20, interval=0.02, what="skipped idle cycles")
        assert diag.last_evaluation["count"] == 1
        state["v"] = 2
        wait_until(lambda: diag.last_evaluation["count"] == 2, timeout=20, interval=0.02, what="a cycle for new data")
        skipped = diag.skipped_cycles
        wait_until(lambda: diag.skipped_cycles >= skipped + 5, timeout=20, interval=0.02, what="idle again")
        assert diag.last_evaluation["count"] == 2
    finally:
        diag.stop()


def test_idle_inputs_still_evaluate_every_idle_interval():
    """Windows slide without new data (findings resolve when traffic stops): one cycle per idle interval."""
    # 1 s: well above a cycle's own spacing (its CPU / max_busy_share) even on a loaded box, so cycles in between skip
    diag = _diagnoser(lambda: "same", idle_interval_s=1.0).start()
    try:
        wait_until(lambda: diag.last_evaluation.get("count", 0) >= 3, timeout=20, interval=0.05,
                   what="periodic cycles while idle")
        assert diag.skipped_cycles > 0
    finally:
        diag.stop()


def test_without_a_version_every_cycle_runs():
    diag = _diagnoser(None).start()
    try:
        wait_until(lambda: diag.last_evaluation.get("count", 0) >= 3, timeout=20, interval=0.02, what="cycles")
        assert diag.skipped_cycles == 0
    finally:
        diag.stop()


def test_slo_status_is_the_latest_cycles_while_the_loop_runs():
    from pathlib import Path

    demo = Path(__file__).resolve().parents[2] / "diagnose" / "slo" / "demo_slos.yaml"
    diag = _diagnoser(lambda: "same", idle_interval_s=3600)
    loaded = diag.load_slos([str(demo)])
    assert loaded.slos
    diag.start()
    try:
        wait_until(lambda: diag.last_evaluation.get("count", 0) >= 1, timeout=20, interval=0.02, what="a cycle")
        first = diag.slo_status()
        assert sorted(s["name"] for s in first) == sorted(s.name for s in loaded.slos)
        assert diag.slo_status() is first  # served from the cycle, not recomputed per request
        assert diag.slo_status(now=diag.clock()) is not first  # an explicit time is computed
    finally:
        diag.stop()


# ---- steady telemetry (issue #18: idle is idle) ---------------------------------------------------
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from collector import schema as s  # noqa: E402
from diagnose.findings import Finding, ResourceRef  # noqa: E402
from diagnose.live.loop import remarkable  # noqa: E402

SVC = "reviews.bookinfo.svc.cluster.local"


def _rows(n: int = 20, code=200, flags="-", ms=20.0, protocol="HTTP/1.1", dst=SVC, slow: int = 1) -> pd.DataFrame:
    """`n` usual requests to `dst`; the last has `code` and `flags`, the last `slow` take `ms`."""
    return pd.DataFrame({s.RESPONSE_CODE: [200] * (n - 1) + [code], s.RESPONSE_FLAGS: ["-"] * (n - 1) + [flags],
                         s.DURATION_MS: [20.0] * (n - slow) + [ms] * slow, s.PROTOCOL: [protocol] * n,
                         s.DESTINATION_SERVICE: [dst] * n})


@pytest.mark.parametrize("rows,baseline,expected", [
    (_rows(), {SVC: 20.0}, False),  # healthy and usual
    (_rows().iloc[:0], {}, False),  # nothing logged
    (_rows(code=503), {SVC: 20.0}, True),  # one error among healthy answers
    (_rows(code=404), {}, True),  # client errors too (no route, denials)
    (_rows(code=429, flags="RL"), {}, True),
    (_rows(flags="UO"), {}, True),  # a flag on an answer that looks fine (circuit breaker, retry budget...)
    (_rows(code=0), {}, True),  # an HTTP request that got no answer
    (_rows(code=0, protocol="-"), {}, False),  # a TCP connection logs 0 when all is well
    (_rows(ms=150.0, slow=20), {SVC: 20.0}, True),  # slower than twice the usual and 100 ms more
    (_rows(ms=150.0, slow=11), {SVC: 20.0}, True),  # most of them: the median moved, the latency rule could fire
    (_rows(ms=150.0, slow=3), {SVC: 20.0}, False),  # only the tail: a busy host, which the rule does not report
    (_rows(ms=5000.0), {SVC: 20.0}, False),  # one slow request among usual ones: the rule's p95 does not move
    (_rows(ms=100.0, slow=20), {SVC: 20.0}, False),  # 5x, but less than 100 ms more: a busy host's noise
    (_rows(ms=700.0, slow=20), {SVC: 400.0}, False),  # under twice the usual
    (_rows(ms=900.0, slow=20), {}, False),  # no baseline: only the absolute bound
    (_rows(ms=1200.0, slow=20), {}, True),
    (_rows(ms=1200.0, slow=20), {SVC: 900.0}, True),  # over a second, whatever the usual
    (_rows(n=9, ms=5000.0, slow=9), {}, False),  # fewer requests than the rule judges
])
def test_remarkable_requests_are_errors_or_slow_answers(rows, baseline, expected) -> None:
    assert remarkable(rows, baseline) is expected


CONFIG = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec: {host: reviews}
"""


def _objects() -> list:
    from mesh.config import load_text

    return load_text(CONFIG, "mesh.yaml").objects  # new objects: what a provider hands out after a change


class _Mesh:
    """Sources whose requests, config and extra findings a test sets."""

    def __init__(self) -> None:
        self.rows = _rows()
        self.objects = _objects()
        self.extra: list[Finding] = []
        self.version = 0

    def sources(self) -> LiveSources:
        from mesh.config import Snapshot

        snap = lambda: Snapshot(self.objects)  # noqa: E731 - a new snapshot per call, the same objects
        return LiveSources(requests=lambda a, b: self.rows, snapshot=snap, analyze=lambda snap: [],
                           extra=lambda now: list(self.extra))


def _steady(mesh: _Mesh) -> LiveDiagnoser:
    def version():  # telemetry that never stops: every look is new data
        mesh.version += 1
        return mesh.version

    return LiveDiagnoser(mesh.sources(), interval_s=0.02, data_version=version, idle_interval_s=3600, steady=True)


@pytest.mark.parametrize("change", ["error", "slow", "config", "open finding"])
def test_steady_telemetry_skips_cycles_and_any_change_runs_one_at_once(change) -> None:
    mesh = _Mesh()
    diag = _steady(mesh).start()
    try:
        wait_until(lambda: diag.steady_skips >= 5, timeout=30, interval=0.02, what="steady cycles skipped")
        assert diag.last_evaluation["count"] == 1  # only the first cycle ran: new data, but steady
        if change == "error":
            mesh.rows = _rows(code=503)
        elif change == "slow":
            mesh.rows = _rows(ms=5000.0, slow=20)
        elif change == "config":
            mesh.objects = _objects()
        else:  # a finding telemetry moves keeps cycles coming so it can resolve on time
            mesh.extra = [Finding("MS3001", "error", "runtime", "x", resource=ResourceRef("Service", "r", "ns"))]
            mesh.objects = _objects()  # (a config change brings the cycle that opens it)
        runs = 2 if change == "config" else 3  # trouble keeps cycles coming; a new config needs one
        wait_until(lambda: diag.last_evaluation["count"] >= runs, timeout=30, interval=0.02,
                   what=f"cycles at the usual interval after: {change}")
        if change == "config":  # a new config is diagnosed once; then steady again
            skips = diag.steady_skips
            wait_until(lambda: diag.steady_skips >= skips + 5, timeout=30, interval=0.02, what="steady again")
    finally:
        diag.stop()


def test_without_steady_every_change_of_data_runs_a_cycle() -> None:
    mesh = _Mesh()
    diag = _steady(mesh)
    diag.steady = False
    diag.start()
    try:
        wait_until(lambda: diag.last_evaluation.get("count", 0) >= 3, timeout=30, interval=0.02, what="cycles")
        assert diag.steady_skips == 0
    finally:
        diag.stop()


def test_an_open_slo_burn_alone_does_not_keep_cycles_coming() -> None:
    """SLO burns are judged over windows of minutes: one cycle per idle interval moves them on time."""
    mesh = _Mesh()
    mesh.extra = [Finding("MS4001", "error", "slo", "burning", resource=ResourceRef("ServiceLevelObjective", "s", "ns"))]
    diag = _steady(mesh).start()
    try:
        wait_until(lambda: diag.steady_skips >= 5, timeout=30, interval=0.02, what="steady cycles skipped")
        assert diag.last_evaluation["count"] == 1 and diag.findings({"status": "open"})
    finally:
        diag.stop()


def test_without_logged_requests_the_rate_frame_is_diagnosed_every_cycle() -> None:
    """The steady check judges logged requests; a mesh diagnosed from its rate frame alone is never steady."""
    mesh = _Mesh()
    mesh.rows = _rows().iloc[:0]
    diag = _steady(mesh)
    diag.sources.rates = lambda window, end=None: pd.DataFrame()
    diag.start()
    try:
        wait_until(lambda: diag.last_evaluation.get("count", 0) >= 4, timeout=30, interval=0.02, what="cycles")
        assert diag.steady_skips == 0
    finally:
        diag.stop()


def test_cycles_run_and_skipped_are_counted_in_self_metrics_by_why() -> None:
    """`/metrics` says how the diagnoser paces itself: cycles run (and their CPU), skipped as unchanged or steady."""
    from diagnose.live import selfmetrics

    def value(name: str, **labels: str) -> float:
        return selfmetrics.REGISTRY.get_sample_value(name, labels) or 0.0

    before = {o: value("meshscope_diagnoser_cycles_total", outcome=o) for o in ("run", "steady", "unchanged")}
    mesh = _Mesh()
    diag = _steady(mesh).start()
    try:
        wait_until(lambda: diag.steady_skips >= 5, timeout=30, interval=0.02, what="steady cycles skipped")
    finally:
        diag.stop()
    # at least: the counters are the process's, and a shared test stack may be diagnosing beside this one
    assert value("meshscope_diagnoser_cycles_total", outcome="steady") - before["steady"] >= diag.steady_skips
    assert value("meshscope_diagnoser_cycles_total", outcome="run") - before["run"] >= diag.last_evaluation["count"]
    assert value("meshscope_diagnoser_cycle_cpu_seconds_total") > 0
    # an unchanged input (the same data version) is the other kind of skip
    fixed = LiveDiagnoser(_Mesh().sources(), interval_s=0.02, data_version=lambda: 1, idle_interval_s=3600).start()
    try:
        wait_until(lambda: fixed.skipped_cycles >= 3, timeout=30, interval=0.02, what="unchanged cycles skipped")
    finally:
        fixed.stop()
    assert value("meshscope_diagnoser_cycles_total", outcome="unchanged") - before["unchanged"] >= 3


@pytest.mark.parametrize("rows,baseline,expected", [
    (_rows(), {SVC: 20.0}, None),
    (_rows(code=503), {SVC: 20.0}, "error"),
    (_rows(code=429, flags="RL"), {}, "error"),
    (_rows(code=0), {}, "no_answer"),
    (_rows(code=0, protocol="-"), {}, None),
    (_rows(flags="UO"), {}, "response_flags"),
    (_rows(ms=150.0, slow=20), {SVC: 20.0}, "slow"),
    (_rows(ms=1200.0, slow=20), {}, "slow"),
])
def test_remarkable_says_why(rows, baseline, expected) -> None:
    from diagnose.live.loop import remarkable_reason

    assert remarkable_reason(rows, baseline) == expected


def test_each_steady_check_is_counted_with_why_a_cycle_had_to_run() -> None:
    """A busy box where cycles keep running is explained on /metrics: the steady checks by result."""
    from diagnose.live import selfmetrics

    def checks(result: str) -> float:
        return selfmetrics.REGISTRY.get_sample_value("meshscope_diagnoser_steady_checks_total", {"result": result}) or 0.0

    mesh = _Mesh()
    diag = _steady(mesh).start()
    try:
        steady0 = checks("steady")
        wait_until(lambda: checks("steady") >= steady0 + 3, timeout=30, interval=0.02, what="steady checks counted")
        slow0 = checks("slow")
        mesh.rows = _rows(ms=5000.0, slow=20)
        wait_until(lambda: checks("slow") > slow0, timeout=30, interval=0.02, what="a slow answer counted")
        wait_until(lambda: diag.last_evaluation["count"] >= 2, timeout=30, interval=0.02, what="the cycle it ran")
    finally:
        diag.stop()


def test_a_cycles_cpu_is_counted_by_phase() -> None:
    """Where a cycle's CPU goes (rules, SLOs, config, extra sources, tracking, subscribers) is on /metrics."""
    from diagnose.live import selfmetrics

    mesh = _Mesh()
    diag = LiveDiagnoser(mesh.sources(), interval_s=0.02)
    diag.evaluate()
    phases = diag.last_evaluation["phases"]
    assert {"read", "rules", "baseline", "config", "slo", "correlate", "extra", "track", "subscribers"} <= set(phases)
    assert all(v >= 0 for v in phases.values())
    assert selfmetrics.REGISTRY.get_sample_value("meshscope_diagnoser_phase_cpu_seconds_total",
                                                 {"phase": "rules"}) is not None


def test_slowness_is_judged_on_the_recent_part_against_the_older_part_as_the_latency_rule_does() -> None:
    """The recent third of the window (at least 5 s) against the lower of the learned and the older part's p95."""
    import numpy as np

    from diagnose.live.loop import recent_part, remarkable_reason

    end, n = 1_000_000.0, 40
    t = pd.to_datetime(np.linspace(end - 19.5, end - 0.5, n), unit="s", utc=True)
    rows = lambda ms: pd.DataFrame({s.START_TIME: t, s.DURATION_MS: ms, s.RESPONSE_CODE: 200,  # noqa: E731
                                    s.RESPONSE_FLAGS: "-", s.DESTINATION_SERVICE: SVC, s.REPORTER: "source"})
    kw = {"end": end, "recent_s": recent_part(20.0)}
    assert remarkable_reason(rows(np.full(n, 20.0)), {}, **kw) is None
    slow_recent = np.where(t >= pd.Timestamp(end - recent_part(20.0), unit="s", tz="UTC"), 200.0, 20.0)
    assert remarkable_reason(rows(slow_recent), {}, **kw) == "slow"  # no baseline learned: the older part is one
    slow_before = np.where(t < pd.Timestamp(end - recent_part(20.0), unit="s", tz="UTC"), 200.0, 20.0)
    assert remarkable_reason(rows(slow_before), {}, **kw) is None  # slow earlier, usual now: nothing to find
