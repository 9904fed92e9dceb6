"""Flap damping tells a flap (back with nothing changed) from a new episode (back after a change that concerns it).

Each class: a flapping edge is damped (3x the quiet evaluations, marked flapping) with or without unrelated
changes; a fault cleared and applied again is not damped, whatever concerns the finding changed (its blamed
object, an object naming its host, its workload's behaviour); a return that never opened is no reopening and
delays no resolution; an unreadable journal counts as no change. Changes are recorded in a real journal.
"""
import time

import pytest

from diagnose.catalog import make
from diagnose.findings import ResourceRef
from diagnose.live.episodes import journal_changed
from diagnose.live.tracker import MIN_QUIET_EVALUATIONS, STATISTICAL_OPEN_AFTER, FindingTracker
from mesh.journal import Journal, content_of

T0 = time.time() - 3000  # the journal keeps recent changes: times near now
DEST = "details.bookinfo.svc.cluster.local"
RESOLVE_AFTER, FLAP_LIMIT = 2, 3


def abort(count: int = 5):
    """The runtime finding as the live loop hands it over: blamed on the VirtualService's fault."""
    f = make("MS3010", resource=ResourceRef("VirtualService", "details", "bookinfo", path="spec/http[0]/fault"),
             source="productpage-v1", destination=DEST, count=count, total=10)
    f.related = [ResourceRef("Service", "details", "bookinfo")]
    f.evidence = {"edge_key": DEST, "edges": [{"source": "productpage-v1", "source_namespace": "bookinfo",
                                               "destination": DEST}]}
    return f


def latency():
    f = make("MS3014", resource=ResourceRef("Service", "details", "bookinfo"), source="productpage-v1",
             destination=DEST, p95_ms=900, reason="3.0x its usual")
    f.evidence = {"edge_key": DEST, "statistical": True}
    return f


class Clock:
    """Evaluations one second apart; returns the evaluations it took for the finding to resolve."""

    def __init__(self, tracker: FindingTracker, make_finding=abort) -> None:
        self.tr, self.t, self.make = tracker, T0, make_finding

    def seen(self, n: int = 1) -> None:
        for _ in range(n):
            self.t += 1
            self.tr.update([self.make()], self.t)

    def quiet_until_resolved(self, limit: int = 50) -> int:
        for k in range(1, limit + 1):
            self.t += 1
            self.tr.update([], self.t)
            if self.tr.findings()[0].status == "resolved":
                return k
        raise AssertionError(f"not resolved after {limit} quiet evaluations")

    def state(self):
        return self.tr.findings()[0]


@pytest.fixture
def journal(tmp_path):
    j = Journal(tmp_path / "journal.sqlite")
    yield j
    j.close()


def tracker(journal=None) -> FindingTracker:
    return FindingTracker(resolve_after=RESOLVE_AFTER, flap_limit=FLAP_LIMIT,
                          changed=journal_changed(lambda: journal) if journal is not None else None)


def vs(fault: bool) -> dict:
    http = {"route": [{"destination": {"host": "details", "subset": "v1"}}]}
    if fault:
        http["fault"] = {"abort": {"httpStatus": 503, "percentage": {"value": 50}}}
    return content_of({"hosts": ["details"], "http": [http]})


def flap_cycles(c: Clock, reps: int, between=lambda c: None) -> list[int]:
    """Open, quiet until resolved, `between` (what happens while it is away), `reps` times."""
    took = []
    for _ in range(reps):
        c.seen(3)
        took.append(c.quiet_until_resolved())
        between(c)
    return took


@pytest.mark.parametrize("with_journal", [False, True], ids=["no journal", "journal with unrelated changes"])
def test_a_flapping_edge_is_damped_once_it_reopened_flap_limit_times(journal, with_journal):
    c = Clock(tracker(journal if with_journal else None))

    def unrelated(c):  # changes elsewhere, in the same namespace and in another: none concerns the edge
        journal.observe("AuthorizationPolicy", "shop", "billing", content_of({"action": "ALLOW"}), at=c.t,
                        who=f"apply {c.t}")
        journal.observe("ConfigMap", "bookinfo", "settings", content_of({"v": c.t}), at=c.t, who="apply")

    took = flap_cycles(c, FLAP_LIMIT + 2, unrelated)
    # the first episode and the first flap_limit - 1 flaps resolve as fast as ever; from the flap_limit-th on, 3x
    assert took == [RESOLVE_AFTER] * FLAP_LIMIT + [3 * RESOLVE_AFTER] * 2
    c.seen()
    assert c.state().evidence.get("flapping") is True


def test_a_flap_stops_counting_once_it_is_older_than_the_flap_window(journal):
    tr = tracker(journal)
    c = Clock(tr)
    flap_cycles(c, FLAP_LIMIT + 1)
    c.t += tr.flap_window_s + 1  # a long quiet spell: the flaps are history
    assert flap_cycles(c, 1) == [RESOLVE_AFTER]


@pytest.mark.parametrize("change", ["blamed object", "object naming the host", "workload behaviour"])
def test_a_fault_cleared_and_applied_again_is_a_new_episode_each_time(journal, change):
    def clear_and_reapply(c):
        if change == "blamed object":  # the scenario's own VirtualService: fault removed, then back
            journal.observe("VirtualService", "bookinfo", "details", vs(False), at=c.t - 0.5, who="clear")
            journal.observe("VirtualService", "bookinfo", "details", vs(True), at=c.t + 0.5, who="apply")
        elif change == "object naming the host":  # another object for the same host (not the one blamed)
            journal.observe("DestinationRule", "bookinfo", "details-pool",
                            content_of({"host": DEST, "trafficPolicy": {"n": c.t}}), at=c.t + 0.5, who="tune")
        else:  # a bad deploy of the edge's caller rolled back and out again
            journal.observe("WorkloadBehavior", "bookinfo", "productpage-v1", content_of({"error_rate": c.t}),
                            at=c.t + 0.5, who="deploy")

    c = Clock(tracker(journal))
    took = flap_cycles(c, FLAP_LIMIT + 3, clear_and_reapply)
    assert took == [RESOLVE_AFTER] * (FLAP_LIMIT + 3)
    c.seen()
    assert not c.state().evidence.get("flapping")


def test_a_change_resets_the_flap_count_and_flaps_after_it_count_again(journal):
    c = Clock(tracker(journal))
    assert flap_cycles(c, FLAP_LIMIT + 1) == [RESOLVE_AFTER] * FLAP_LIMIT + [3 * RESOLVE_AFTER]
    journal.observe("VirtualService", "bookinfo", "details", vs(False), at=c.t + 0.5, who="a fix that did not hold")
    # back after the change: a new episode, fast again; then it flaps with nothing changed and is damped again
    assert flap_cycles(c, FLAP_LIMIT + 1) == [RESOLVE_AFTER] * FLAP_LIMIT + [3 * RESOLVE_AFTER]


def test_returns_that_never_opened_are_no_reopenings_and_keep_the_resolution():
    tr = FindingTracker(resolve_after=RESOLVE_AFTER, flap_limit=FLAP_LIMIT)
    c = Clock(tr, latency)
    c.seen(STATISTICAL_OPEN_AFTER)
    assert c.quiet_until_resolved() == RESOLVE_AFTER
    resolved_at, opened_at = c.state().resolved_at, c.state().opened_at
    for _ in range(3 * FLAP_LIMIT):  # passing spikes: one evaluation each, never long enough to open
        c.seen(STATISTICAL_OPEN_AFTER - 1)
        c.t += 1
        tr.update([], c.t)
        f = c.state()
        assert (f.status, f.resolved_at, f.opened_at) == ("resolved", resolved_at, opened_at)
    # a real return now resolves after the usual quiet evaluations, not 3x
    c.seen(STATISTICAL_OPEN_AFTER)
    assert c.state().status == "open" and not c.state().evidence.get("flapping")
    assert c.quiet_until_resolved() == RESOLVE_AFTER


def test_an_unreadable_journal_counts_as_no_change(tmp_path):
    j = Journal(tmp_path / "journal.sqlite")
    j.close()  # every query now fails as a broken database does
    c = Clock(tracker(j))
    assert flap_cycles(c, FLAP_LIMIT + 1) == [RESOLVE_AFTER] * FLAP_LIMIT + [3 * RESOLVE_AFTER]


# -- quiet time, not cycles: a slow evaluation (a loaded host) must not stretch the quiet a resolution needs --

def resolve_at_pace(tr: FindingTracker, gap: float, flaps: int = 0) -> tuple[int, float]:
    """(clean evaluations, seconds since the last sighting) until resolved, evaluations `gap` s apart once the
    finding is gone (after `flaps` fast flaps first)."""
    c = Clock(tr)
    flap_cycles(c, flaps)
    c.seen(3)
    last = c.t
    for k in range(1, 50):
        c.t += gap
        tr.update([], c.t)
        if c.state().status == "resolved":
            return k, c.t - last
    raise AssertionError("never resolved")


@pytest.mark.parametrize("interval", [None, 1.0])
def test_at_the_intended_pace_a_resolution_takes_resolve_after_evaluations(interval):
    tr = FindingTracker(resolve_after=3, flap_limit=FLAP_LIMIT, interval_s=interval)
    assert resolve_at_pace(tr, 1.0) == (3, 3.0)


def test_slow_evaluations_resolve_after_the_quiet_time_not_more_cycles():
    tr = FindingTracker(resolve_after=3, flap_limit=FLAP_LIMIT, interval_s=1.0)
    assert resolve_at_pace(tr, 10.0) == (MIN_QUIET_EVALUATIONS, 10.0 * MIN_QUIET_EVALUATIONS)
    # without a pace, cycles are all the tracker knows
    assert resolve_at_pace(FindingTracker(resolve_after=3, flap_limit=FLAP_LIMIT), 10.0) == (3, 30.0)


def test_one_clean_evaluation_never_resolves_however_late_it_comes():
    """A source that failed to read gives one empty evaluation: the finding must survive it."""
    tr = FindingTracker(resolve_after=3, flap_limit=FLAP_LIMIT, interval_s=1.0)
    c = Clock(tr)
    c.seen(3)
    c.t += 600
    tr.update([], c.t)
    assert c.state().status == "open"
    c.seen()
    assert c.state().status == "open" and c.state().last_seen == c.t


def test_a_flapping_finding_needs_three_times_the_quiet_time_at_any_pace():
    tr = FindingTracker(resolve_after=3, flap_limit=FLAP_LIMIT, interval_s=1.0)
    k, quiet = resolve_at_pace(tr, 4.0, flaps=FLAP_LIMIT)  # damped: 9 evaluations' worth of quiet, 9 s
    assert (k, quiet) == (3, 12.0)
