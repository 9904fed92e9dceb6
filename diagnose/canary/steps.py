"""Rollout steps: when a canary's weights moved inside the window, and which version is the stable one.

A rollout shifts weights in steps (90/10, 70/30, 50/50...). The verdict must compare both versions
over the same stretches of time (diagnose.canary.verdict.evaluate_periods), so the window is cut
where a weighted VirtualService's weights changed, read from the config journal (mesh.journal:
every change with its time and content, on the bundled mesh and on a cluster alike). The journal
also says which version was there first: the one that took all the traffic before the split began,
or else the one with the most weight when it began. Past 50/50 the candidate carries most requests,
and "the busiest version is stable" would swap the roles; the rollout's start does not.

Without a journal (or without history for the VirtualService) the window is one period and the
stable version is the busiest in the window's earliest period (evaluate_periods' own rule).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from diagnose.canary.verdict import INSUFFICIENT, ROLLBACK, Period, Thresholds, Verdict, evaluate_periods
from mesh.config.model import ConfigObject
from mesh.controlplane.policy import ConfigIndex, subsets
from mesh.controlplane.registry import fqdn

MIN_PERIOD_S = 10.0  # a step shorter than this is merged into the one before: too few requests to stratify on
MAX_PERIODS = 8  # the latest steps of a long rollout; older moves are merged (each period is one rate read)

Weights = dict[str, dict[str, float]]  # host (FQDN) -> version -> weight


@dataclass
class Rollout:
    """What the journal says about the window: where to cut it, and each split host's stable version."""

    boundaries: list[float] = field(default_factory=list)  # times inside the window where weights moved
    stable: dict[str, str] = field(default_factory=dict)  # host -> version that had the traffic first
    timeline: list[tuple[float, Weights]] = field(default_factory=list)  # (from time, weights), oldest first

    def weights_at(self, host: str, t: float) -> dict[str, float] | None:
        """The host's weights per version in force at time t (None: not known to be split then)."""
        got = None
        for at, w in self.timeline:
            if at > t:
                break
            got = w.get(host)
        return got


def weights_of(spec: dict[str, Any] | None, namespace: str, index: ConfigIndex,
               mesh_ns: str | None = None) -> Weights:
    """Per host, the weights of its first HTTP route split over several destinations (else of its first
    route; one destination weighs 100), by version label.

    A subset is mapped to its version through the DestinationRule of the live config (the version
    label is what telemetry reports); a subset without a version label keeps its own name."""
    out: Weights = {}
    ns = namespace or "default"
    for r in (spec or {}).get("http") or []:
        if not isinstance(r, dict):
            continue
        routes = [d for d in (r.get("route") or []) if isinstance(d, dict) and isinstance(d.get("destination"), dict)]
        if not routes:
            continue
        here: Weights = {}
        for d in routes:
            dest = d["destination"]
            if not isinstance(dest.get("host"), str):
                continue
            host = fqdn(dest["host"], ns)
            host_ns = host.split(".")[1] if host.count(".") >= 2 else ns
            labels = dict(subsets(index.destination_rule(host, ns, host_ns))).get(dest.get("subset"))
            ver = (labels or {}).get("version") or dest.get("subset") or host
            w = d.get("weight")
            here.setdefault(host, {})
            weight = float(w) if isinstance(w, (int, float)) else (100.0 if len(routes) == 1 else 0.0)
            here[host][ver] = here[host].get(ver, 0.0) + weight
        for host, w in here.items():  # the first split route of a host (the one a rollback rewrites), else its first
            if host not in out or (_split(w) and not _split(out[host])):
                out[host] = w
    return out


def _split(w: dict[str, float] | None) -> bool:
    return bool(w) and sum(1 for x in w.values() if x > 0) >= 2


def rollout(objects: list[ConfigObject], root_namespace: str, journal: Any, since: float, until: float) -> Rollout:
    """Cut points and stable versions for every host a live VirtualService splits by weight."""
    index = ConfigIndex(objects, root_namespace)
    out = Rollout()
    if journal is None:
        return out
    states: list[tuple[float, Weights]] = []  # (time, weights) of every VirtualService state, merged
    per_vs: list[list[tuple[float, Weights | None]]] = []
    for vs in index.of_kind("VirtualService"):
        now = weights_of(vs.spec, vs.namespace or "default", index)
        if not any(_split(w) for w in now.values()):
            continue
        try:
            rows = journal.history("VirtualService", vs.namespace, vs.name, limit=200)
        except Exception:  # noqa: BLE001 - a journal that cannot be read is no history, not a failed verdict
            rows = []
        hist: list[tuple[float, Weights | None]] = []
        for row in sorted(rows, key=lambda r: (r.get("time") or 0.0, r.get("seq") or 0)):
            if row.get("op") == "delete":
                hist.append((float(row["time"]), {}))
            elif row.get("op") in ("create", "update"):
                after = row.get("after")
                spec = after.get("spec") if isinstance(after, dict) else None
                hist.append((float(row["time"]), weights_of(spec, vs.namespace or "default", index) if spec else None))
        per_vs.append(hist)
        for host in now:
            if host not in out.stable and _split(now[host]):
                st = _stable(host, hist, now[host])
                if st is not None:
                    out.stable[host] = st
    cuts: set[float] = set()
    for hist in per_vs:
        prev: Weights | None = None
        for t, w in hist:
            if w is not None and prev is not None and w != prev and since < t < until:
                cuts.add(t)
            if w is not None:
                states.append((t, w))
            prev = w if w is not None else prev
    out.boundaries = _thin(sorted(cuts), since, until)
    states.sort(key=lambda s: s[0])
    merged: Weights = {}
    for t, w in states:
        merged = {**merged, **w}
        out.timeline.append((t, merged))
    return out


def _stable(host: str, hist: list[tuple[float, Weights | None]], now: dict[str, float]) -> str | None:
    """Walking back from now while the host stays split: the version that had all its traffic just before
    the split began, else the heaviest one when it began; None when that cannot be told."""
    first_split = now
    for _t, w in reversed(hist):
        if w is None:
            return None  # a state we could not read: the start of the rollout is unknown
        hw = w.get(host)
        if _split(hw):
            first_split = hw  # type: ignore[assignment]
            continue
        if hw:
            only = [v for v, x in hw.items() if x > 0]
            if len(only) == 1:
                return only[0]
        break
    top = max(first_split.values())
    heaviest = sorted(v for v, x in first_split.items() if x == top)
    return heaviest[0] if len(heaviest) == 1 else None


def _thin(cuts: list[float], since: float, until: float) -> list[float]:
    """Cut points at least MIN_PERIOD_S apart and from the window's ends, at most MAX_PERIODS periods."""
    kept: list[float] = []
    for t in cuts:
        if t - since < MIN_PERIOD_S or until - t < MIN_PERIOD_S:
            continue
        if kept and t - kept[-1] < MIN_PERIOD_S:
            kept[-1] = t  # the later move is the step that lasted
            continue
        kept.append(t)
    return kept[-(MAX_PERIODS - 1):] if len(kept) >= MAX_PERIODS else kept


def journal_of(backend: Any) -> Any:
    """The config journal of a backend: the bundled mesh's own, or the one `serve` keeps for a cluster."""
    mesh = getattr(backend, "mesh", None)
    if mesh is not None:
        try:
            return getattr(mesh, "journal", None)
        except Exception:  # noqa: BLE001 - a journal that cannot be opened: judge without steps
            return None
    return getattr(backend, "journal", None)


def judge(rates: Callable[[float, float], pd.DataFrame], objects: list[ConfigObject], root_namespace: str,
          journal: Any, window_s: float, now: float, th: Thresholds = Thresholds(),
          requests: Callable[[float, float], pd.DataFrame | None] | None = None) -> list[Verdict]:
    """Canary verdicts over [now - window_s, now], cut at the rollout's steps (one rate read per step).

    Each verdict's evidence lists the steps (`steps`: requests, candidate share, error rates and p95
    per step, with the weights then in force) when the window holds more than one. With `requests`
    (start, end -> the access-log rows), a verdict that would promote or hold is also judged per path
    (diagnose.canary.paths): a candidate failing on one path only is rolled back."""
    since = now - window_s
    ro = rollout(objects, root_namespace, journal, since, now)
    edges = [since, *ro.boundaries, now]
    periods = [Period(a, b, rates(b - a, b)) for a, b in zip(edges, edges[1:])]
    verdicts = evaluate_periods(periods, th, ro.stable)
    verdicts += silent_candidates(periods, objects, root_namespace, verdicts, ro.stable)
    for v in verdicts:
        if v.service in ro.stable:
            v.evidence["stable_from"] = "the rollout's first weights (config journal)"
        for s in v.evidence.get("steps") or []:
            s["weights"] = ro.weights_at(v.service, (s["start"] + s["end"]) / 2)
    if requests is not None and any(v.verdict not in (INSUFFICIENT, ROLLBACK) for v in verdicts):
        from diagnose.canary import paths
        paths.apply(verdicts, paths.reader(requests)(since, now), objects, th)
    return verdicts


def silent_candidates(periods: list[Period], objects: list[ConfigObject], root_namespace: str,
                      verdicts: list[Verdict], stable: dict[str, str] | None = None) -> list[Verdict]:
    """`insufficient_traffic` for each version a weighted route sends traffic to that served no request in the
    window while another version of the host did. Verdicts exist only for hosts whose traffic spans several
    versions, so a canary receiving nothing (its pods missing or failing before they answer, its subset's
    labels matching no pod) had no verdict at all: the API listed nothing for a rollout in progress."""
    from diagnose.canary.verdict import _requests

    index = ConfigIndex(objects, root_namespace)
    weights: Weights = {}
    for vs in index.of_kind("VirtualService"):
        for host, w in weights_of(vs.spec, vs.namespace or "default", index).items():
            if _split(w) and host not in weights:
                weights[host] = w
    if not weights:
        return []
    judged = {(v.service, v.candidate) for v in verdicts} | {(v.service, v.stable) for v in verdicts}
    if all((h, ver) in judged for h, w in weights.items() for ver, x in w.items() if x > 0):
        return []  # every weighted version has a verdict: the window's counts need not be read again
    served: dict[str, dict[str, float]] = {}
    ns_of: dict[str, str] = {}
    for p in periods:
        if p.rates is None or p.rates.empty:
            continue
        got = _requests(p.rates, p.seconds)
        for h, ns, ver, n in zip(got["host"].tolist(), got["ns"].tolist(), got["ver"].tolist(), got["n"].tolist()):
            if h in weights and n > 0:
                served.setdefault(h, {})[ver] = served.setdefault(h, {}).get(ver, 0.0) + n
                ns_of[h] = ns
    out = []
    for host, w in sorted(weights.items()):
        seen = served.get(host) or {}
        if not seen:
            continue  # no traffic to the host at all: nothing to compare either version with
        total = sum(x for x in w.values() if x > 0)
        for ver, weight in sorted(w.items()):
            if weight <= 0 or seen.get(ver, 0.0) > 0 or (host, ver) in judged:
                continue
            st = (stable or {}).get(host)
            st = st if st in seen else max(seen, key=seen.get)
            out.append(Verdict(host, ns_of.get(host, ""), st, ver, INSUFFICIENT, 0.0,
                               f"no request reached {ver} in the window though the route sends it {weight / total:.0%} "
                               f"({seen[st]:.0f} to {st}): its pods may be missing, not selected by its subset, or "
                               "failing before they answer (see the runtime findings); nothing can be judged yet",
                               {"requests": {"stable": seen[st], "candidate": 0.0}, "weights": dict(w),
                                "window_s": float(sum(p.seconds for p in periods))}))
    return out


__all__ = ["Rollout", "journal_of", "judge", "rollout", "silent_candidates", "weights_of"]
