"""Canary verdicts in the live loop: a regressing canary opens a finding like any runtime problem.

The live diagnoser's own window (seconds) is too short to judge a version, so the verdicts use
their own (default 5 minutes) and are recomputed at most every `every_s`: a refresh is cheap
(vectorized) but pointless more often than data can change a verdict. Two kinds of split are a
rollout someone is running, and raise findings:
- a service an explicit weighted route splits over versions, and
- a newer version taking traffic beside the stable one without any weighted route (a second
  Deployment behind the same Service): a version that first took traffic at least one window
  after the stable version did, for `newcomer_s` after it appeared. Versions that simply coexist
  (bookinfo's reviews v1/v2/v3 by design, all taking traffic from the start or before meshscope
  started: the history before the window is read once) are not alarms; GET /api/v1/canary still
  judges them on demand.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from collector import schema
from diagnose.canary.findings import findings_of, weighted_hosts
from diagnose.canary.steps import judge
from diagnose.canary.verdict import Thresholds, Verdict
from diagnose.findings import Finding

# in the live loop: act on roll back and promote; "hold" and "not enough traffic yet" are the API's to show
LIVE_VERDICTS = frozenset({"rollback", "promote"})


def serving_versions(frame: pd.DataFrame | None) -> set[tuple[str, str]]:
    """(host, version) pairs that took requests in a rate frame (vectorised; "unknown" versions skipped)."""
    if frame is None or len(frame) == 0 or not {schema.METRIC, schema.DESTINATION_SERVICE,
                                                 schema.DESTINATION_VERSION, schema.RATE} <= set(frame.columns):
        return set()
    keep = (frame[schema.METRIC] == schema.ISTIO_REQUESTS_TOTAL).to_numpy() & (
        np.nan_to_num(frame[schema.RATE].to_numpy(dtype=float, na_value=np.nan)) > 0)
    idx = np.flatnonzero(keep)
    # distinct pairs on integer codes: the frame's size, not its label text, sets the cost
    hc, hu = pd.factorize(frame[schema.DESTINATION_SERVICE].iloc[idx])
    vc, vu = pd.factorize(frame[schema.DESTINATION_VERSION].iloc[idx])
    ok = (hc >= 0) & (vc >= 0)
    pairs = np.unique(hc[ok].astype(np.int64) * (len(vu) + 1) + vc[ok])
    hs, vs = np.asarray(hu, dtype=object), np.asarray(vu, dtype=object)
    return {(str(hs[p // (len(vu) + 1)]), str(vs[p % (len(vu) + 1)])) for p in pairs} - \
        {(str(h), v) for h in hs for v in ("unknown", "")}


class Newcomers:
    """When each version of each service first took traffic, as this process has seen it.

    Primed once with the traffic of `prime_s` before the first window (versions there are
    established: first seen at -inf), so a restart does not make every version new."""

    def __init__(self, window_s: float, newcomer_s: float):
        self.window_s, self.newcomer_s = window_s, newcomer_s
        self.first: dict[str, dict[str, float]] = {}
        self.primed = False

    def prime(self, frame: pd.DataFrame | None) -> None:
        for host, ver in serving_versions(frame):
            self.first.setdefault(host, {})[ver] = -math.inf
        self.primed = True

    def observe(self, frame: pd.DataFrame | None, now: float) -> None:
        """Versions serving in a frame of the current window: first seen now unless seen before."""
        for host, ver in serving_versions(frame):
            self.first.setdefault(host, {}).setdefault(ver, now)

    def unseen(self, pairs: set[tuple[str, str]]) -> bool:
        """Would `observe` note any of these (host, version) pairs? Only a pair not seen before changes anything."""
        return any(h is not None and v and v != "unknown" and v not in self.first.get(h, {}) for h, v in pairs)

    def candidates(self, now: float) -> set[str]:
        """Services with a version that `is_new` could call a newcomer now (the only ones worth judging)."""
        out = set()
        for host, got in self.first.items():
            for ver, c in got.items():
                if now - c <= self.newcomer_s and any(c - s >= self.window_s for v, s in got.items() if v != ver):
                    out.add(host)
        return out

    def is_new(self, v: Verdict, now: float) -> bool:
        """The candidate first took traffic a window or more after the stable version, and not long ago."""
        got = self.first.get(v.service, {})
        c, s = got.get(v.candidate), got.get(v.stable)
        return c is not None and s is not None and c - s >= self.window_s and now - c <= self.newcomer_s


def finding_source(rates: Callable[..., Any], snapshot: Callable[[], Any], window_s: float = 300.0,
                   every_s: float = 10.0, th: Thresholds = Thresholds(),
                   clock: Callable[[], float] = time.monotonic,
                   journal: Callable[[], Any] | None = None, newcomer_s: float = 6 * 3600.0,
                   prime_s: float = 3600.0, observe_s: float = 30.0,
                   pairs: Callable[[float, float], set[tuple[str, str]]] | None = None,
                   requests: Callable[[float, float], Any] | None = None) -> Callable[[float], list[Finding]]:
    """A live loop `extra` source: fn(now) -> canary findings (MS5010 roll back, MS5011 promote).

    Without a weighted route the verdicts (a read of the whole window per step) are computed only while a
    version may be a newcomer: which versions serve is read from the stretch since the last look (at least
    `observe_s`), a tenth of the window's cost on a mesh where nothing is being rolled out.

    `journal` gives the config journal: the window is then judged step by step where the weights moved,
    against the version the rollout started from (diagnose.canary.steps).

    `pairs(span, end)`: the (destination service, version) label pairs of the request counters a `rates(span,
    end)` read would cover, or a superset (the bundled store: ~6 ms instead of ~60 ms for the rate frame). When
    every pair is one `seen` knows already, the observation could change nothing and the rate frame is not read
    (#18: the observation was ~0.7 % of a core on the idle demo).

    `requests(start, end)`: the access-log rows, when the source has them: a verdict that would promote or
    hold is then also judged per path (diagnose.canary.paths), read only while such a verdict exists."""
    cache: dict[str, Any] = {"at": float("-inf"), "found": []}
    seen = Newcomers(window_s, newcomer_s)

    def found(now: float) -> list[Finding]:
        if clock() - cache["at"] < every_s:
            return list(cache["found"])
        cache["at"] = clock()
        snap = snapshot()
        if snap is None:
            cache["found"] = []
            return []
        objects = list(getattr(snap, "objects", None) or [])
        root = getattr(getattr(snap, "mesh_config", None), "root_namespace", "istio-system")
        hosts = weighted_hosts(objects, root)
        if not seen.primed:  # what served before the first window is established, not new
            try:
                seen.prime(rates(prime_s, now - window_s))
            except Exception:  # noqa: BLE001 - no history: everything seen from now on starts together
                seen.prime(None)
        frames: list[Any] = []

        def read(w: float, end: float | None = None) -> Any:  # the verdicts' own reads also feed `seen`
            got = rates(w, end)
            frames.append(got)
            return got

        if not hosts:  # idle is idle: no rollout running, so judge only when a newcomer may be one
            since = cache.get("observed")
            # the stretch since the last look (the whole window the first time), with a scrape or two of slack
            span = window_s if since is None else min(window_s, max(observe_s, now - since + observe_s / 2))
            if _may_be_new(pairs, seen, span, now):
                seen.observe(rates(span, now), now)
            cache["observed"] = now
            if not seen.candidates(now):
                cache["found"] = []
                return []
        verdicts = judge(read, objects, root, journal() if journal else None, window_s, now, th, requests=requests)
        if frames and hosts:
            seen.observe(frames[-1], now)  # the latest step: what serves now
        live = []
        for v in verdicts:
            if v.verdict not in LIVE_VERDICTS:
                continue
            if v.service in hosts:
                live.append(v)
            elif seen.is_new(v, now):
                first = seen.first[v.service]
                v.evidence["side_by_side"] = {
                    "candidate_first_traffic": first[v.candidate],
                    "stable_first_traffic": None if math.isinf(first[v.stable]) else first[v.stable],
                    "why": "no weighted route: a newer version took traffic beside the stable one"}
                live.append(v)
        cache["found"] = findings_of(live, objects, root)
        return list(cache["found"])

    found.seen = seen  # type: ignore[attr-defined]  # what the source knows (tests compare it)
    return found


def request_pairs(store: Any, window_s: float, end: float) -> set[tuple[str, str]]:
    """(destination service, version) label pairs of the request counters `istio_rates(store, window_s, end)`
    reads, its baseline lookback included: a superset of the pairs that frame finds serving, from one filtered
    read of three columns (no rates, no pandas)."""
    import pyarrow.dataset as ds

    from collector.query import BASELINE_LOOKBACK_S

    lookback = min(float(window_s), BASELINE_LOOKBACK_S)
    keys = [schema.DESTINATION_SERVICE, schema.DESTINATION_VERSION]
    t = store.arrow("metrics", end - window_s - lookback, end + lookback, columns=[schema.METRIC, *keys],
                    filter_expr=ds.field(schema.METRIC) == schema.ISTIO_REQUESTS_TOTAL)
    return {(r[keys[0]], r[keys[1]]) for r in t.group_by(keys).aggregate([]).to_pylist()}


def _may_be_new(pairs: Callable[[float, float], set[tuple[str, str]]] | None, seen: Newcomers, span: float,
                now: float) -> bool:
    """Could the stretch hold a version `seen` does not know? (yes when the pairs cannot be listed)"""
    if pairs is None:
        return True
    try:
        return seen.unseen(pairs(span, now))
    except Exception:  # noqa: BLE001 - the rate frame decides, as without `pairs`
        return True


__all__ = ["LIVE_VERDICTS", "Newcomers", "finding_source", "request_pairs", "serving_versions"]
