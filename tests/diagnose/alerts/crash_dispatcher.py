"""Run by test_restart in its own process: queue notifications, report, then wait to be SIGKILLed.

    python -m tests.diagnose.alerts.crash_dispatcher ALERTS_YAML DATA_DIR N_FINDINGS
"""
from __future__ import annotations

import sys
import time

from diagnose.alerts import AlertDispatcher, load_alerts_config

from tests.diagnose.alerts.findings_data import runtime_finding


def main() -> None:
    cfg_path, data_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    loaded = load_alerts_config(cfg_path)
    assert not loaded.problems, loaded.problems
    d = AlertDispatcher(loaded.config, data_dir, backoff_base=0.05, backoff_cap=0.2, tick_s=0.05).start()
    queued = d.process([runtime_finding(f"web-{i}->details") for i in range(n)])
    print(f"queued {len(queued)}", flush=True)
    while True:  # keep trying (the receiver is down) until killed
        time.sleep(1)


if __name__ == "__main__":
    main()
