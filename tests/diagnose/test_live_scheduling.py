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
    diag = _diagnoser(lambda: "same", idle_interval_s=0.2).start()
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
