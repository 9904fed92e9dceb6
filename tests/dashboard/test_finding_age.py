"""A finding's age is counted from its current episode, on the Findings page and in alerts."""
from __future__ import annotations

from diagnose.alerts.model import alert_from_finding
from diagnose.catalog import make
from diagnose.live.tracker import FindingTracker
from dashboard.pages.findings import rows


class Source:
    def __init__(self, findings, now):
        self._findings, self._now = findings, now

    def now(self):
        return self._now

    def findings(self, filters):
        return self._findings


def test_a_finding_that_came_back_is_as_old_as_its_return():
    tracker = FindingTracker()
    finding = lambda: make("MS3060", process="bookinfo.ratings-v1", kind="sidecar", count=3, window="5 min",  # noqa: E731
                           exit_code="signal 9", restarts=3)
    now = 1000.0
    for _ in range(5):  # open
        tracker.update([finding()], now)
        now += 10
    for _ in range(40):  # resolved: gone long enough
        tracker.update([], now)
        now += 10
    back = now
    for _ in range(5):  # the second episode
        tracker.update([finding()], now)
        now += 10
    (f,) = [t.finding for t in tracker.tracks.values()]
    assert f.first_seen == 1000.0 and f.opened_at == back
    (row,) = rows(Source([f.to_dict()], now), {})
    assert row["age_min"] == round((now - back) / 60, 1)
    assert alert_from_finding(f, now).starts_at == back
