"""One object changed several times before the onset: an apply/revert storm, a fault then a harmless edit.

Each step used to be ranked on its own: the latest step came first and its rollback restored the state
just before it, so a fault (tls.mode DISABLE) followed by a label edit was "rolled back" to the fault; and a
storm of flips filled the top 3, hiding the other candidate. Now an object's steps in the window are one
entry with the net change (before the first -> after the last), the number of steps, and a rollback to the
state before the first. At 67169a0 both tests fail.
"""
from __future__ import annotations

import yaml

from diagnose.changes import annotate, rank
from mesh.journal import content_of
from tests.diagnose.changes.test_change_classes import DR_REVIEWS, T0, _finding, _journal

DISABLE = {**DR_REVIEWS, "trafficPolicy": {"tls": {"mode": "DISABLE"}}}
MUTUAL = {**DR_REVIEWS, "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}


def test_a_fault_then_a_harmless_edit_rolls_back_to_before_the_fault(tmp_path):
    j = _journal(tmp_path, [(0, "DestinationRule", "bookinfo", "reviews", DISABLE)])
    j.observe("DestinationRule", "bookinfo", "reviews", content_of(DISABLE, labels={"team": "web"}),
              who="someone else", at=T0 + 30)
    changes = j.query()
    [top, *_] = rank(_finding(T0 + 40), changes)
    assert top["ref"] == "DestinationRule bookinfo/reviews" and top["steps"] == 2 and top["likely_cause"]
    assert "labels.team" in top["summary"] and "1 more fields" in top["summary"]  # the net diff: labels and tls.mode
    assert "in 2 changes" in top["sentence"]
    f = _finding(T0 + 40)
    annotate([f], changes)
    restored = yaml.safe_load(f["rollback_yaml"].split("\n", 1)[1])
    assert restored["spec"] == DR_REVIEWS and "labels" not in restored["metadata"]  # before the fault, not the fault


def test_a_storm_of_flips_is_one_entry_and_leaves_room_for_the_other_candidate(tmp_path):
    flips = [(t, "DestinationRule", "bookinfo", "reviews", DISABLE if k % 2 == 0 else MUTUAL)
             for k, t in enumerate(range(0, 50, 5))]  # ten flips, ending on MUTUAL
    deny = {"action": "DENY", "rules": [{"from": [{"source": {"notNamespaces": ["bookinfo"]}}]}]}
    j = _journal(tmp_path, [(1, "AuthorizationPolicy", "bookinfo", "deny-outside", deny), *flips])
    ranked = rank(_finding(T0 + 60), j.query())
    refs = [r["ref"] for r in ranked]
    assert refs.count("DestinationRule bookinfo/reviews") == 1 and "AuthorizationPolicy bookinfo/deny-outside" in refs, refs
    dr = ranked[refs.index("DestinationRule bookinfo/reviews")]
    assert dr["steps"] == 10 and "ISTIO_MUTUAL" in dr["summary"]
    assert "trafficPolicy" not in yaml.safe_load(dr["rollback_yaml"].split("\n", 1)[1])["spec"]


def test_steps_before_the_objects_last_return_to_its_start_are_not_part_of_the_net_change(tmp_path):
    """Applied, cleared, applied again by another hand (the shared mesh's scenarios do exactly this): the cause is
    the last application, by its author alone, and its rollback is the object's absence; the same for a storm that
    flips between the old state and the fault (its last flip). Found by the session's clean run on the real mesh."""
    abort = {"hosts": ["details"], "http": [{"fault": {"abort": {"httpStatus": 503, "percentage": {"value": 100}}},
                                             "route": [{"destination": {"host": "details"}}]}]}
    j = _journal(tmp_path, [])
    for at, spec, who in ((0, abort, "scenario unknown-host"), (10, None, "scenario --clear"),
                          (20, abort, "scenario fault-abort")):
        j.observe("VirtualService", "bookinfo", "details", None if spec is None else content_of(spec),
                  deleted=spec is None, who=who, at=T0 + at)
    [top, *_] = rank(_finding(T0 + 30, host="details"), j.query())
    assert (top["ref"], top["op"], top["who"]) == ("VirtualService bookinfo/details", "create", "scenario fault-abort")
    assert "steps" not in top and top["likely_cause"]

    flips = [(t, "DestinationRule", "bookinfo", "reviews", DISABLE if k % 2 == 0 else DR_REVIEWS)
             for k, t in enumerate(range(0, 35, 5))]  # seven flips between the start and the fault, ending on it
    (tmp_path / "storm").mkdir()
    j = _journal(tmp_path / "storm", flips)
    ranked = rank(_finding(T0 + 60), j.query())
    refs = [r["ref"] for r in ranked]
    assert refs.count("DestinationRule bookinfo/reviews") == 1, refs
    dr = ranked[refs.index("DestinationRule bookinfo/reviews")]
    assert "steps" not in dr and "DISABLE" in dr["summary"] and dr["time"] == T0 + 30
