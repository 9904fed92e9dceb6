"""A meshscope killed with undelivered notifications (and an unflushed group) loses none of them."""
import signal
import subprocess
import sys

from diagnose.alerts import AlertDispatcher, Outbox, load_alerts_config
from diagnose.alerts.dispatcher import OUTBOX_FILE

from tests.diagnose.alerts.sink import REPO, Sink
from tests.util import wait_until


def test_sigkill_with_pending_notifications_then_restart_delivers_all(tmp_path):
    sink = Sink(tmp_path)  # not started yet: every send fails with a connection error
    cfg = tmp_path / "alerts.yaml"
    cfg.write_text(f"""\
receivers:
  - {{name: now, url: "{sink.url}", group_by: ["..."], group_wait: 0s, group_interval: 1s}}
  - {{name: later, url: "{sink.url}", group_by: [alertname], group_wait: 4s, group_interval: 1s}}
""")
    data = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-m", "tests.diagnose.alerts.crash_dispatcher", str(cfg), str(data), "5"],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "queued 5"  # the 5 "now" notifications are in the outbox
        box = Outbox(data / OUTBOX_FILE)  # a second reader of the same file, as an operator would be
        wait_until(lambda: len(box.entries(state="pending")) == 5 and all(e.attempts >= 2 for e in box.entries(state="pending")),
                   timeout=60, what="failed attempts recorded")
        box.close()
    finally:
        proc.send_signal(signal.SIGKILL)  # no clean shutdown: nothing gets flushed on the way out
        proc.wait(timeout=10)
        proc.stdout.close()

    sink.start()
    # the restarted process is not told about the findings again: what it sends comes from disk alone
    d = AlertDispatcher(load_alerts_config(cfg).config, data, backoff_base=0.05, backoff_cap=0.2, tick_s=0.05).start()
    try:
        wait_until(lambda: len(sink.delivered()) >= 6, timeout=60, what="all notifications after restart")
        got = sink.delivered()
        now_edges = sorted(r["body"]["alerts"][0]["labels"]["edge"] for r in got if r["body"]["receiver"] == "now")
        later = [r for r in got if r["body"]["receiver"] == "later"]
        assert now_edges == sorted(f"web-{i}->details" for i in range(5))
        # the "later" group was inside its group_wait when the process died: the grouper state survived
        assert len(later) == 1 and sorted(a["labels"]["edge"] for a in later[0]["body"]["alerts"]) == now_edges
        # the receiver answers before the dispatcher records the delivery: wait for the record
        wait_until(lambda: d.outbox.counts() == {"now": {"delivered": 5}, "later": {"delivered": 1}}, timeout=30,
                   what="every delivery recorded in the outbox")
    finally:
        d.close()
        sink.stop()
