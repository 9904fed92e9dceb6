"""Incidents: the findings that share one cause, root cause first, then its symptoms, with the total impact.

One broken object shows up many ways at once: the runtime failure on the edge it
governs, the config finding that predicted it, the SLO it burns, the latency its
callers see because their dependency fails, the server-side refusals mirroring
the client-side failures. An SRE wants one row for that, headed by the cause.

Findings are joined (union-find over their fingerprints) when:
- a runtime finding is linked to a config finding (`evidence.config_findings` /
  `evidence.explains`, set by `diagnose.correlate` through declared signatures);
- they blame the same config object (kind, namespace, name);
- one is a symptom on a service whose workloads call a service with a problem
  (latency, 5xx, resets, timeouts upstream of a failing, timing-out or slow
  dependency; `slow_dependency`): effects propagate up the call chain, through
  services that show nothing themselves (`depends_on`, every runtime finding's);
- one is a limit crossed (a connection pool overflowing) above a service that is
  slow: the overflow heads it, the slowness explains it;
- one is a symptom class on the same destination service as a failure (server
  side mirrors of client side failures, SLO burns of that service or of a service
  that depends on it).
The root is the member that explains the others: requests failing through a
config object of their own (before a slowness that explains them, e.g. a route
timeout shorter than a delayed dependency), a runtime failure blamed on a
config object, else a config finding whose signature is shown, else the failure
deepest in the call chain (a dependency's failure is never a second root cause
upstream), else the biggest impact. Grouping is linear in findings plus edges.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from diagnose.correlate import impact_score, number, rank
from diagnose.findings import SEVERITY_RANK, Finding, ResourceRef

# Findings that follow from a failure elsewhere rather than being one: they never head an incident that
# also holds a failure.
# (MS6021: a circuit breaker's rejections are its designed effect of a failing or slow upstream.)
SYMPTOM_CODES = frozenset({"MS3008", "MS3009", "MS3013", "MS3014", "MS3015", "MS4001", "MS4002", "MS4003", "MS6021"})
# Findings whose requests still succeed, only later (an injected delay, a latency rise): they explain failures
# such as timeouts upstream, but where requests fail with a cause of their own, that failure heads the incident.
SLOW_CODES = frozenset({"MS3011", "MS3014"})
# Failures of a limit that slowness explains: requests overflow a connection pool when answers take longer.
# (Route timeouts, MS3008, are symptoms already and join what is slow below them.)
LIMIT_CODES = frozenset({"MS3007"})


@dataclass
class Incident:
    """One problem: its root cause finding, the findings that are its symptoms or evidence, and what it costs."""

    id: str
    root: Finding
    members: list[Finding] = field(default_factory=list)  # root first, then config evidence, then symptoms
    roles: dict[str, str] = field(default_factory=dict)  # fingerprint -> root | config | symptom

    @property
    def status(self) -> str:
        return "open" if any(f.status == "open" for f in self.members) else "resolved"

    @property
    def severity(self) -> str:
        live = [f.severity for f in self.members if f.status != "resolved"] or [f.severity for f in self.members]
        return max(live, key=lambda s: SEVERITY_RANK.get(s, 0))

    @property
    def cause(self) -> ResourceRef | None:
        return self.root.resource

    @property
    def symptoms(self) -> list[Finding]:
        return [f for f in self.members if self.roles.get(f.fingerprint) == "symptom"]

    @property
    def impact(self) -> dict[str, Any]:
        """Hurt traffic over the incident's distinct failing edges (symptoms upstream are not counted twice)."""
        edges: dict[tuple[str, str], dict[str, Any]] = {}
        services: set[str] = set()
        slos: set[str] = set()
        worst = 0.0
        for f in self.members:
            if f.code.startswith("MS4"):
                slos.add(str(f.evidence.get("edge_key", "")))
                continue
            if not _runtime(f) or not f.impact:
                continue
            services.add(str(f.evidence.get("edge_key", "")))
            worst = max(worst, number(f.impact.get("share")))
            if self.roles.get(f.fingerprint) == "symptom" and f.code in SYMPTOM_CODES:
                continue
            for e in _dicts(f.evidence.get("edges")) or [{"source": "?", "destination": f.evidence.get("edge_key"),
                                                          "rps": f.impact.get("rps", 0.0)}]:
                key = (str(e.get("source")), str(e.get("destination")))
                if key not in edges or number(e.get("rps")) > number(edges[key].get("rps")):
                    edges[key] = e
        return {"rps": round(sum(number(e.get("rps")) for e in edges.values()), 4),
                "share": round(worst, 4), "edges": [{"source": s, "destination": d} for s, d in edges],
                "services": sorted(s for s in services if s), "slos": sorted(s for s in slos if s)}

    @property
    def first_seen(self) -> float | None:
        return min((f.first_seen for f in self.members if f.first_seen is not None), default=None)

    @property
    def last_seen(self) -> float | None:
        return max((f.last_seen for f in self.members if f.last_seen is not None), default=None)

    @property
    def resolved_at(self) -> float | None:
        if self.status == "open":
            return None
        return max((f.resolved_at for f in self.members if f.resolved_at is not None), default=None)

    @property
    def title(self) -> str:
        r = self.root.resource
        where = f"{r.label()}" + (f" ({r.path})" if r and r.path else "") if r else "unknown object"
        n = len(self.members) - 1
        return f"{self.root.code} {where}" + (f" and {n} related finding{'s' * (n != 1)}" if n else "")

    def to_dict(self, full: bool = True) -> dict[str, Any]:
        d = {"id": self.id, "title": self.title, "status": self.status, "severity": self.severity,
             "cause": _ref_dict(self.cause), "root": self.root.to_dict() if full else _brief(self.root),
             "impact": self.impact, "first_seen": self.first_seen, "last_seen": self.last_seen,
             "resolved_at": self.resolved_at,
             "findings": [{**(_brief(f) if not full else f.to_dict()), "role": self.roles.get(f.fingerprint)}
                          for f in self.members]}
        return d


def _ref_dict(r: ResourceRef | None) -> dict[str, Any] | None:
    return None if r is None else {"kind": r.kind, "name": r.name, "namespace": r.namespace, "path": r.path,
                                   "source": r.source, "label": r.label()}


def _brief(f: Finding) -> dict[str, Any]:
    return {"fingerprint": f.fingerprint, "code": f.code, "severity": f.severity, "status": f.status,
            "message": f.message, "resource": _ref_dict(f.resource), "impact": f.impact,
            "edge_key": f.evidence.get("edge_key")}


class _Union:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _obj_key(f: Finding) -> tuple | None:
    r = f.resource
    if r is None or r.kind in ("Service", "ServiceLevelObjective"):
        return None
    return (r.kind, r.namespace, r.name)


def _service_of(f: Finding) -> str:
    if f.code.startswith("MS4"):
        slo = f.evidence.get("slo")
        svc = str(slo.get("service", "")) if isinstance(slo, dict) else ""
        if svc and "." not in svc and f.resource and f.resource.namespace:
            svc = f"{svc}.{f.resource.namespace}.svc.cluster.local"
        if not svc:
            svc = next((f"{r.name}.{r.namespace}.svc.cluster.local" for r in f.related if r.kind == "Service"), "")
        return svc
    return str(f.evidence.get("edge_key", "")) if _runtime(f) else ""


def _runtime(f: Finding) -> bool:
    """Seen in traffic: the runtime codes, and any other family's finding measured on an edge (e.g. ASM's)."""
    return f.code.startswith("MS3") or (not f.code.startswith("MS4") and bool(f.impact)
                                        and bool(f.evidence.get("edge_key")))


def _short(host: str) -> str:
    return host.split(".")[0]


def _dicts(x: Any) -> list[dict[str, Any]]:
    """The dict items of a list from evidence (saved or hand-written evidence may hold anything)."""
    return [e for e in x if isinstance(e, dict)] if isinstance(x, list) else []


def _strs(x: Any) -> list[str]:
    """The strings of a list from evidence (e.g. `depends_on`); anything else is no list."""
    return [str(v) for v in x] if isinstance(x, list) else []


def _callers(f: Finding) -> set[str]:
    return {str(e.get("source_workload", "")) for e in [*_dicts(f.evidence.get("edges")),
                                                        *_dicts(f.evidence.get("client_edges"))]
            if e.get("source_workload")}


def _name_prefixes(workload: str) -> list[str]:
    """The service names a workload may belong to: reviews-v1-7d9f -> reviews-v1-7d9f, reviews-v1, reviews."""
    parts = workload.split("-")
    return ["-".join(parts[:k]) for k in range(len(parts), 0, -1)]


def _dependencies(findings: list[Finding], problems_by_service: dict[str, list[int]],
                  failing: set[str]) -> dict[str, list[str]]:
    """{service short name: services with a runtime problem its workloads call}, from those findings' caller
    edges; services that fail come before those that only show symptoms (timeouts, latency)."""
    out: dict[str, list[str]] = defaultdict(list)
    for dsvc, idx in problems_by_service.items():
        if not dsvc:
            continue
        for c in {c for i in idx for c in _callers(findings[i])}:
            for p in _name_prefixes(c):
                if dsvc not in out[p]:
                    out[p].append(dsvc)
    for p, below in out.items():
        below.sort(key=lambda d: d not in failing)  # stable: otherwise first seen first
    return out


def group(findings: list[Finding]) -> list[Incident]:
    """Incidents of a list of findings (open and resolved kept apart), worst first."""
    opened = [f for f in findings if f.status != "resolved"]
    resolved = [f for f in findings if f.status == "resolved"]
    return [*_group(opened), *_group(resolved)]


def _group(findings: list[Finding]) -> list[Incident]:
    if not findings:
        return []
    u = _Union(len(findings))
    by_fp = {f.fingerprint: i for i, f in enumerate(findings)}
    by_obj: dict[tuple, int] = {}
    failures_by_service: dict[str, list[int]] = defaultdict(list)
    problems_by_service: dict[str, list[int]] = defaultdict(list)  # every runtime finding (failure or symptom)
    for i, f in enumerate(findings):
        for c in _dicts(f.evidence.get("config_findings")):
            j = by_fp.get(str(c.get("fingerprint")))
            if j is not None:
                u.join(i, j)
        explains = f.evidence.get("explains")
        for fp in explains if isinstance(explains, list) else []:
            j = by_fp.get(str(fp))
            if j is not None:
                u.join(i, j)
        sd = f.evidence.get("slow_dependency")
        dep = str(sd.get("fingerprint")) if isinstance(sd, dict) else None
        if dep in by_fp:
            u.join(i, by_fp[dep])
        key = _obj_key(f)
        if key is not None:
            if key in by_obj:
                u.join(i, by_obj[key])
            else:
                by_obj[key] = i
        if _runtime(f) and f.code not in SYMPTOM_CODES:
            failures_by_service[_service_of(f)].append(i)
        if _runtime(f):
            problems_by_service[_service_of(f)].append(i)
    # the same failure class blamed on an object another such failure names as a co-cause (its `related`): one
    # change (a namespace-wide STRICT) breaks two edges, blamed on the DestinationRule on one and the
    # PeerAuthentication on the other
    by_code_obj = {(findings[i].code, _obj_key(findings[i])): i for idx in failures_by_service.values() for i in idx
                   if _obj_key(findings[i]) is not None}
    for idx in failures_by_service.values():
        for i in idx:
            for r in findings[i].related:
                j = by_code_obj.get((findings[i].code, (r.kind, r.namespace, r.name)))
                if j is not None and r.kind not in ("Service", "ServiceLevelObjective"):
                    u.join(i, j)
    deps = _dependencies(findings, problems_by_service, {s for s, idx in failures_by_service.items() if idx})
    failing_by_caller: dict[str, int] = {}  # calling workload -> a failure (not a slowness) it sees
    for idx in failures_by_service.values():
        for j in idx:
            if findings[j].code not in SLOW_CODES:
                for c in _callers(findings[j]):
                    failing_by_caller.setdefault(c, j)
    depth = _depths(findings, deps)
    for i, f in enumerate(findings):
        svc = _service_of(f)
        if not svc:
            continue
        symptom = f.code in SYMPTOM_CODES
        # the same service's failure: a symptom (or a server-side mirror) belongs to it
        if symptom and failures_by_service.get(svc):
            u.join(i, failures_by_service[svc][0])
            continue
        # a failure with no cause of its own on a service that fails at the same time through a config object
        # (a connection reset while outlier detection ejects the only endpoint) is that failure's side effect:
        # one service, one moment, one known cause
        if not symptom and _obj_key(f) is None:
            explained = [j for j in failures_by_service.get(svc, []) if j != i and _obj_key(findings[j]) is not None]
            if explained:
                u.join(i, explained[0])
                continue
        # a failure or symptom upstream of a dependency with a problem (failing, timing out, slow) is that
        # dependency's incident: latency and timeouts propagate up the call chain, whatever started them
        # (a failure with its own config cause stays its own incident: two faults at once are two incidents)
        # a limit crossed because something below got slow (a connection pool overflowing while answers take
        # longer: by Little's law, concurrency is rate x latency) is that slowness's incident too, even with a
        # config cause of its own, which heads it; failures below (fast ones) stay incidents of their own
        if f.code in LIMIT_CODES:
            slow = [j for d in [*deps.get(_short(svc), []), *_strs(f.evidence.get("depends_on"))] if d != svc
                    for j in problems_by_service.get(d, []) if findings[j].code in SLOW_CODES]
            if slow:
                u.join(i, slow[0])
                continue
        if symptom or _obj_key(f) is None:
            below = [d for d in deps.get(_short(svc), []) if d != svc]
            if not below and symptom:  # nothing it calls directly has a finding: what it waits on further down
                on = f.evidence.get("depends_on")
                on = [str(d) for d in on if d != svc] if isinstance(on, list) else []
                below = [d for d in on if failures_by_service.get(d)] or [d for d in on if problems_by_service.get(d)]
            if below:
                u.join(i, (failures_by_service.get(below[0]) or problems_by_service[below[0]])[0])
            elif symptom and f.code in SLOW_CODES:
                # slow with nothing failing below it, while the same callers' requests fail elsewhere at the
                # same moment (a caller's route changed under it: the last requests before the break were slow)
                hit = next((failing_by_caller[c] for c in sorted(_callers(f)) if c in failing_by_caller), None)
                if hit is not None:
                    u.join(i, hit)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(findings)):
        groups[u.find(i)].append(i)
    out = [_incident([findings[i] for i in idx], [depth.get(i, 0) for i in idx]) for idx in groups.values()]
    return sorted(out, key=_incident_rank)


def _depths(findings: list[Finding], deps: dict[str, list[str]]) -> dict[int, int]:
    """How many levels of failing dependencies lie below each finding's service (0: nothing below fails)."""
    memo: dict[str, int] = {}

    def levels(svc: str, seen: frozenset) -> int:
        if svc in memo:
            return memo[svc]
        below = [d for d in deps.get(_short(svc), []) if d != svc and d not in seen]
        n = 1 + max((levels(d, seen | {svc}) for d in below), default=-1) if below else 0
        if len(seen) < 8:
            memo[svc] = n
        return n

    return {i: levels(_service_of(f), frozenset()) if _service_of(f) else 0 for i, f in enumerate(findings)}


def _root_key(f: Finding, depth: int) -> tuple:
    runtime = _runtime(f)
    blamed = _obj_key(f) is not None
    primary = runtime and f.code not in SYMPTOM_CODES  # a problem of its own (a failure or an injected delay)
    failure = primary and f.code not in SLOW_CODES  # ... whose requests fail
    fails = runtime and f.code not in SLOW_CODES  # requests fail, a symptom or not (timeouts too)
    explained = bool(f.evidence.get("slow_dependency"))  # slow because a dependency is: not the cause
    # a real failure first; where nothing fails of its own, requests failing through a config object of their
    # own (a route timeout shorter than a delayed dependency) before the slowness that explains them
    return (not (failure and blamed), not failure, not (fails and blamed), not (primary and blamed), not primary,
            not (runtime and blamed), not (not runtime and not f.code.startswith("MS4")),
            explained, depth, -impact_score(f), -SEVERITY_RANK.get(f.severity, 0), f.code)


def _incident(members: list[Finding], depths: list[int]) -> Incident:
    order = sorted(range(len(members)), key=lambda k: _root_key(members[k], depths[k]))
    root = members[order[0]]
    roles = {root.fingerprint: "root"}
    for f in members:
        if f is root:
            continue
        roles[f.fingerprint] = "symptom" if _runtime(f) or f.code.startswith("MS4") else "config"
    rest = rank([f for f in members if f is not root])
    rest.sort(key=lambda f: roles[f.fingerprint] != "config")
    return Incident(id=incident_id(root), root=root, members=[root, *rest], roles=roles)


def incident_id(root: Finding) -> str:
    """Stable while the cause stays: the blamed object (or the failing service) and the failure class."""
    r = root.resource
    cause = f"{r.kind}/{r.namespace}/{r.name}" if r and r.kind != "Service" else f"svc/{_service_of(root)}/{root.code}"
    return "inc-" + hashlib.sha1(cause.encode()).hexdigest()[:12]


def _incident_rank(inc: Incident) -> tuple:
    impact = max((impact_score(f) for f in inc.members), default=0.0)
    has_traffic = any(f.impact for f in inc.members)
    return (not has_traffic, -round(impact, 6), -SEVERITY_RANK.get(inc.severity, 0), inc.root.code, inc.id)


def finding_from_dict(d: dict[str, Any]) -> Finding:
    """A Finding back from its `to_dict()` form (API answers, reports, saved state)."""
    def ref(r: Any) -> ResourceRef | None:
        if not isinstance(r, dict):
            return None
        return ResourceRef(kind=str(r.get("kind", "")), name=str(r.get("name", "")),
                           **{k: (None if r.get(k) is None else str(r.get(k))) for k in ("namespace", "path", "source")})
    def when(x: Any) -> float | None:
        return number(x) if x is not None else None

    def mapping(x: Any) -> dict[str, Any]:
        return {str(k): v for k, v in x.items()} if isinstance(x, dict) else {}

    related = d.get("related")
    return Finding(code=str(d.get("code", "")), severity=str(d.get("severity", "warning")),
                   category=str(d.get("category", "runtime")), message=str(d.get("message", "")),
                   resource=ref(d.get("resource")),
                   related=[x for x in (ref(r) for r in related if isinstance(related, list)) if x is not None]
                   if isinstance(related, list) else [],
                   equivalents=[str(x) for x in d.get("equivalents") or []] if isinstance(d.get("equivalents"), list) else [],
                   remediation=str(d.get("remediation", "")), evidence=mapping(d.get("evidence")),
                   impact=mapping(d.get("impact")), status=str(d.get("status", "open")),
                   first_seen=when(d.get("first_seen")), last_seen=when(d.get("last_seen")),
                   resolved_at=when(d.get("resolved_at")), opened_at=when(d.get("opened_at")),
                   episodes=_episodes(d.get("episodes")))


def _episodes(x: Any) -> list[list[float]]:
    """Closed [opened, resolved] intervals of a saved finding; a malformed one is dropped, not fatal."""
    out = []
    for e in x if isinstance(x, list) else []:
        try:
            o, r = float(e[0]), float(e[1])
        except (TypeError, ValueError, IndexError, KeyError):
            continue
        if o == o and r == r and o <= r:
            out.append([o, r])
    return out


def incidents_of_dicts(findings: list[dict[str, Any]], *, full: bool = False) -> list[dict[str, Any]]:
    """Incidents (as plain dicts) of findings given as dicts: what the API and reports serve."""
    return [i.to_dict(full=full) for i in group([finding_from_dict(d) for d in findings])]
