"""Flap or new episode: did something that concerns a finding change while it was away?

Flap damping exists so an edge that fails on and off with nothing changing does
not page every minute. A finding that comes back after its fault was cleared
and applied again, or after a fix that did not hold, is news: its reopening
must not count as a flap, or the next clear resolves three times slower. The
config journal says what changed and when; `diagnose.changes` says which
changes concern a finding (its own object or service, an object naming its
host or selecting its workload, a workload's behaviour: the tiers it calls a
likely cause), so the tracker asks here on each reopening.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diagnose.changes import AFTER_ONSET_S, rank
from diagnose.findings import Finding

QUERY_LIMIT = 5000  # changes read per reopening (a busy cluster's few minutes)


def journal_changed(journal: Callable[[], Any]) -> Callable[[Finding, float, float], bool]:
    """`changed(finding, since, until)` for `FindingTracker`: a change between `since` and `until` (a tick
    after, as the loop sees a finding late) that is a likely cause of the finding. `journal()` returns the
    current journal (None: nothing is known to have changed)."""
    def changed(finding: Finding, since: float, until: float) -> bool:
        j = journal()
        if j is None or until <= since:
            return False
        entries = j.query(since=since, until=until + AFTER_ONSET_S, limit=QUERY_LIMIT)
        top = rank(finding.to_dict(), entries, onset=until, lookback_s=until - since, top=1)
        return bool(top) and bool(top[0]["likely_cause"])
    return changed
