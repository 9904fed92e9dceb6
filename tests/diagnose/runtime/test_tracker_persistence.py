"""Open findings (and so the incidents made of them) survive a kill -9: same identity, same first_seen."""
import json
import os
import signal
import subprocess
import sys
import textwrap

from diagnose.live.tracker import FindingTracker
from tests.util import wait_until

CHILD = textwrap.dedent("""
    import sys, time
    from diagnose.catalog import make
    from diagnose.findings import ResourceRef
    from diagnose.live.tracker import FindingTracker
    tr = FindingTracker(resolve_after=2, state_path=sys.argv[1])
    f = make("MS1002", ResourceRef("VirtualService", "reviews", "bookinfo", path="spec/http[0]"), subset="v4",
             host="reviews")
    g = make("MS1006", ResourceRef("VirtualService", "ratings", "bookinfo"), total=90)
    tr.update([f, g], 1000.0)
    tr.update([f], 1001.0)
    tr.update([f], 1002.0)   # g resolved after two evaluations without it
    print("ready", flush=True)
    while True:
        time.sleep(1)   # the parent kills this process with SIGKILL
""")


def test_open_and_resolved_findings_come_back_after_kill_9(tmp_path):
    state = tmp_path / "findings-state.json"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(state)], stdout=subprocess.PIPE, text=True,
                             cwd=os.getcwd())
    try:
        assert child.stdout.readline().strip() == "ready"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    tr = FindingTracker(resolve_after=2, state_path=state)
    back = {f.code: f for f in tr.findings()}
    assert back["MS1002"].status == "open" and back["MS1002"].first_seen == 1000.0
    assert back["MS1006"].status == "resolved" and back["MS1006"].resolved_at == 1002.0
    # the same problem seen again continues the same finding, it does not open a new one
    from diagnose.catalog import make
    from diagnose.findings import ResourceRef
    again = make("MS1002", ResourceRef("VirtualService", "reviews", "bookinfo", path="spec/http[0]"), subset="v4",
                 host="reviews")
    tr.update([again], 1100.0)
    assert tr.finding(again.fingerprint).first_seen == 1000.0


def test_a_damaged_state_file_is_ignored_not_fatal(tmp_path):
    state = tmp_path / "findings-state.json"
    state.write_text("{not json")
    assert FindingTracker(state_path=state).findings() == []
    state.write_text(json.dumps({"version": 1, "tracks": [{"finding": {"code": "MS1006"}, "status": "open"},
                                                          {"nope": 1}]}))
    assert [f.code for f in FindingTracker(state_path=state).findings()] == ["MS1006"]


def test_the_file_holds_the_states_after_every_kind_of_change(tmp_path):
    """Each track's JSON is kept while it does not change: whatever changes (open, resolve, a return that lapses,
    a reopening, retention) must still reach the file, as a fresh serialisation of every state would."""
    from diagnose.catalog import make
    from diagnose.findings import ResourceRef
    from diagnose.live.tracker import STATISTICAL_OPEN_AFTER

    def spike():
        f = make("MS3014", resource=ResourceRef("Service", "details", "bookinfo"), source="productpage-v1",
                 destination="details.bookinfo.svc.cluster.local", p95_ms=900, reason="3.0x its usual")
        f.evidence = {"edge_key": "details.bookinfo.svc.cluster.local", "statistical": True}
        return f

    def rule(n):
        return make("MS1006", ResourceRef("VirtualService", f"vs{n}", "bookinfo"), total=90)

    assert STATISTICAL_OPEN_AFTER == 2  # the schedule below opens the spike on its second sighting
    path = tmp_path / "findings-state.json"
    tr = FindingTracker(resolve_after=2, retention_s=50, state_path=path)
    steps = [[rule(1), rule(2), spike()], [rule(1), spike()], [rule(1)], [rule(1)],  # spike opens, resolves
             [rule(1), spike()], [rule(1)],  # a return that lapses: resolved again, at its old time
             [rule(1), spike()], [rule(1), spike()], [], [], [], [rule(3)]]  # reopens; all resolve; a new one
    for k, found in enumerate(steps):
        tr.update(found, 1000.0 + 10 * k)
        on_disk = json.loads(path.read_text())
        assert on_disk == json.loads(json.dumps(tr.state(), default=str)), k
    assert {t["finding"]["resource"]["name"]: t["status"] for t in on_disk["tracks"]} == \
        {"vs1": "resolved", "details": "resolved", "vs3": "open"}  # vs2 resolved long ago: dropped by retention
