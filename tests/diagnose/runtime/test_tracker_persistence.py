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
