"""Each closed episode of a finding is recorded (issue #14): a page in the past can then say whether a finding
that came back was open at an instant before its current episode, instead of "state then unknown"."""
from diagnose.catalog import make
from diagnose.findings import EPISODES_KEPT, ResourceRef
from diagnose.live.tracker import FindingTracker
from dashboard.components.as_of import earlier_episode, findings_at, open_at, timeline_as_of


def denial():
    f = make("MS3012", resource=ResourceRef("Service", "ratings", "bookinfo"), source="reviews-v2",
             destination="ratings.bookinfo.svc.cluster.local", count=5, total=5, policy="deny-all")
    f.evidence = {"edge_key": "ratings.bookinfo.svc.cluster.local"}
    return f


def run(tr, schedule):
    """schedule: (time, seen?) evaluations in order."""
    for t, seen in schedule:
        tr.update([denial()] if seen else [], float(t))


def test_episodes_are_recorded_on_resolution_and_answer_open_or_resolved_at_any_earlier_instant(tmp_path):
    state = tmp_path / "findings-state.json"
    tr = FindingTracker(resolve_after=2, flap_limit=99, state_path=state)
    # open 100..(resolved at 103), open again 200..(resolved 203), open again from 300 (current episode)
    run(tr, [(100, 1), (101, 1), (102, 0), (103, 0), (200, 1), (202, 0), (203, 0), (300, 1), (301, 1)])
    f = tr.findings()[0].to_dict()
    assert f["first_seen"] == 100 and f["opened_at"] == 300 and f["status"] == "open"
    assert f["episodes"] == [[100.0, 103.0], [200.0, 203.0]]
    for t, want in ((99, False), (100, True), (102.5, True), (103, False), (150, False), (201, True), (250, False),
                    (300, True), (400, True)):
        assert open_at(f, t) is want, t
        assert not earlier_episode(f, t), t  # every instant's state is known
    then = findings_at([f], 201.0)
    assert [(x["status"], x["opened_at"]) for x in then] == [("open", 200.0)]  # aged from that episode's onset
    bars = timeline_as_of([f], 250.0)  # between episodes: the last one before, resolved
    assert [(b["status"], b["opened_at"], b["resolved_at"]) for b in bars] == [("resolved", 200.0, 203.0)]
    assert timeline_as_of([f], 99.0) == []

    back = FindingTracker(resolve_after=2, state_path=state)  # a restart keeps them
    assert back.findings()[0].episodes == [[100.0, 103.0], [200.0, 203.0]]


def test_a_reopening_that_never_opened_is_no_episode_and_the_list_is_bounded():
    tr = FindingTracker(resolve_after=1, open_after=2, flap_limit=10_000)
    run(tr, [(1, 1), (2, 1), (3, 0)])  # open 1..3
    run(tr, [(10, 1), (11, 0)])  # seen once: pending, never open again
    f = tr.findings()[0]
    assert f.episodes == [[1.0, 3.0]]
    t = 100
    for _ in range(EPISODES_KEPT + 5):
        run(tr, [(t, 1), (t + 1, 1), (t + 2, 0)])
        t += 10
    f = tr.findings()[0].to_dict()
    assert len(f["episodes"]) == EPISODES_KEPT and f["episodes"][-1] == [float(t - 10), float(t - 8)]
    # the first episodes are no longer kept: an instant before the oldest kept one is unknown, not "resolved"
    assert earlier_episode(f, 2.0) and not open_at(f, 2.0)
    assert not earlier_episode(f, f["episodes"][0][0] + 0.5) and open_at(f, f["episodes"][0][0] + 0.5)


def test_a_saved_finding_with_malformed_episodes_keeps_the_good_ones():
    from diagnose.incidents import finding_from_dict

    f = finding_from_dict({"code": "MS3012", "episodes": [[1, 2], ["x", 3], [5, 4], [6], "junk", [7, 9]]})
    assert f.episodes == [[1.0, 2.0], [7.0, 9.0]]
    assert finding_from_dict({"code": "MS3012", "episodes": "nope"}).episodes == []
