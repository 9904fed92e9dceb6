"""Replay a window's edges against live config and live + proposed config, edge by edge.

Three questions per edge, each answered with the control plane's semantics:
- mTLS: does the destination workload's effective PeerAuthentication mode become STRICT
  while this edge still sends plaintext (connection_security_policy != mutual_tls)?
- authorization: does the RBAC the control plane would generate for the destination
  workload deny this edge's peer identity (and port) where the live RBAC did not?
- routing: does the host's default VirtualService route send a share of this edge's
  traffic to a host or subset with no ready workload, or shift it between destinations?
Only workloads and hosts whose governing objects differ between the two configs are
evaluated, so one proposed policy costs in proportion to what it touches. Nothing here
talks to the mesh: a prediction never mutates it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from collector import schema
from diagnose.findings import ResourceRef
from diagnose.whatif import deletion, rbac_eval, unjudged
from mesh.config.duplicates import identity
from mesh.config.model import ConfigObject
from mesh.config.traffic_policy import tls_mode
from mesh.controlplane.authz import policies_of
from mesh.controlplane.context import ConfigError
from mesh.controlplane.policy import ConfigIndex, host_matches, subsets, traffic_policy
from mesh.controlplane.registry import Workload, fqdn, services_from, workloads_from

DRY_RUN = "istio.io/dry-run"
MTLS, AUTHZ, UNREADY, SHIFT = "mtls_strict", "authz_deny", "no_ready_workload", "shift"
ONTO_FAILING = "shift_onto_failing"  # a route moving traffic onto destinations that fail today
NOT_JUDGED = "not_judged"  # a change of a kind the replay does not model: the edges it governs are at risk
_EDGE_COLS = ["s_ns", "s_wl", "principal", "mtls", "d_host", "d_ns", "d_wl", "d_app", "d_ver"]


@dataclass
class EdgeImpact:
    """What the change does to one observed edge (source workload -> destination)."""

    kind: str
    source: str  # ns/workload
    destination: str  # ns/workload, or the host for route impacts
    host: str
    rps: float  # the edge's observed requests/s over the window
    broken_rps: float  # requests/s that would newly fail (0 for a pure shift)
    reason: str
    rule: dict[str, Any] | None = None  # the proposed object (and rule path) responsible
    certain: bool = True  # False when it hinges on request attributes telemetry lacks (path, method)
    shift: dict[str, float] = field(default_factory=dict)  # destination -> requests/s moved (+ in, - out)
    edge_rps: float = 0.0  # all requests/s of the (source workload, host) over the window: broken_rps's denominator
    share: float = 1.0  # the share of this edge's requests that would fail (from its logged requests; 1 without them)
    requests: int = 0  # logged requests of the edge the share was judged on (0: judged on the edge as a whole)
    deleted: list[str] = field(default_factory=list)  # the deleted objects whose absence does this ("Kind ns/name (file:line)")


@dataclass
class ImpactReport:
    window_s: float
    edges: int
    total_rps: float
    impacts: list[EdgeImpact] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)  # config findings the change introduces
    problems: list[str] = field(default_factory=list)  # proposed files that did not load, objects skipped
    predicted: bool = True  # False when the proposal did not load: findings only, no prediction
    deleted: list[dict[str, Any]] = field(default_factory=list)  # objects the change deletes (kind, namespace, name, source)

    @property
    def broken_rps(self) -> float:
        return float(sum(i.broken_rps for i in self.impacts if i.certain))

    @property
    def at_risk_rps(self) -> float:
        return float(sum(i.broken_rps for i in self.impacts))

    @property
    def no_traffic(self) -> bool:
        return self.edges == 0

    def to_dict(self) -> dict[str, Any]:
        return {"window_s": self.window_s, "edges": self.edges, "total_rps": round(self.total_rps, 6),
                "predicted": self.predicted, "no_traffic": self.no_traffic,
                "broken_rps": round(self.broken_rps, 6), "at_risk_rps": round(self.at_risk_rps, 6),
                "impacts": [asdict(i) for i in self.impacts], "findings": self.findings, "problems": self.problems,
                "deleted": self.deleted}


def overlay(live: list[ConfigObject], proposed: list[ConfigObject],
            deleted: list[ConfigObject] | None = None) -> list[ConfigObject]:
    """Live objects with the proposed ones applied on top (same type/namespace/name replaced) and the
    deleted ones gone (a deleted object proposed again is re-created, as delete then apply would)."""
    keys = {identity(o) for o in proposed} | {identity(o) for o in deleted or ()}
    return [o for o in live if identity(o) not in keys] + list(proposed)


_SOURCES = {"reporter": schema.REPORTER, "s_ns": schema.SOURCE_WORKLOAD_NAMESPACE, "s_wl": schema.SOURCE_WORKLOAD,
            "principal": schema.SOURCE_PRINCIPAL, "mtls": schema.CONNECTION_SECURITY_POLICY,
            "d_host": schema.DESTINATION_SERVICE, "d_ns": schema.DESTINATION_WORKLOAD_NAMESPACE,
            "d_wl": schema.DESTINATION_WORKLOAD, "d_app": schema.DESTINATION_APP, "d_ver": schema.DESTINATION_VERSION}


def _col(rates: pd.DataFrame, name: str) -> pd.Series:
    """A label column as a categorical without missing values (absent labels read "unknown")."""
    if name not in rates.columns:
        return pd.Series(pd.Categorical(["unknown"] * len(rates)), index=rates.index)
    col = rates[name]
    if not isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype(str).astype("category")
    if col.isna().any():
        if "unknown" not in col.cat.categories:
            col = col.cat.add_categories(["unknown"])
        col = col.fillna("unknown")
    return col


def edges_of(rates: pd.DataFrame) -> pd.DataFrame:
    """One row per (source workload, peer identity, mTLS, destination workload and host): requests/s.

    Destination-reported requests are what reached the server (where mTLS and RBAC are
    enforced); edges only a client reported (no server sidecar) are added from the source side.
    Grouped on categorical codes, then decoded: the window's size, not its label text, sets the cost.
    """
    if rates is None or rates.empty or schema.METRIC not in rates.columns:
        return pd.DataFrame(columns=[*_EDGE_COLS, "rps"])
    req = rates[rates[schema.METRIC] == schema.ISTIO_REQUESTS_TOTAL]
    frame = pd.DataFrame({k: _col(req, v) for k, v in _SOURCES.items()})
    frame["rps"] = pd.to_numeric(req[schema.RATE], errors="coerce").fillna(0.0).to_numpy()
    frame = frame[frame["rps"] > 0]
    g = frame.groupby(["reporter", *_EDGE_COLS], observed=True, sort=False)["rps"].sum().reset_index()
    dest = g[g["reporter"].astype(str) == "destination"]
    src = g[g["reporter"].astype(str) == "source"]
    if len(src):
        key = ["s_ns", "s_wl", "d_host", "d_wl"]
        seen = dest[key].astype(str).drop_duplicates()
        src = src.merge(seen.assign(_seen=True), how="left", on=key) if len(seen) else src.assign(_seen=np.nan)
        src = src[src["_seen"].isna()].drop(columns="_seen")
    out = pd.concat([dest.drop(columns="reporter"), src.drop(columns="reporter")], ignore_index=True)
    for c in _EDGE_COLS:
        out[c] = out[c].astype(str)
    if len(src):
        out = out.groupby(_EDGE_COLS, sort=False)["rps"].sum().reset_index()
    out.loc[out["principal"] == "unknown", "principal"] = ""
    return out


def _ref(obj: ConfigObject, path: str | None = None) -> dict[str, Any]:
    line = obj.lines.get(path or "") if path else None
    src = None
    if obj.source is not None:
        src = f"{obj.source.file}:{line or getattr(obj.source, 'line', 0) or 0}"
    return asdict(ResourceRef(obj.kind, obj.name, obj.namespace, path, src))


def _dry_run(ap: ConfigObject) -> bool:
    return str(ap.annotations.get(DRY_RUN, "")).lower() == "true"


class _Side:
    """One config version with the lookups the replay needs."""

    def __init__(self, objects: list[ConfigObject], root_namespace: str, trust_domain: str):
        self.index = ConfigIndex(objects, root_namespace)
        self.trust_domain = trust_domain
        self.workloads = {(w.namespace, w.name): w for w in workloads_from(objects)}
        self.services = {s.hostname: s for s in services_from(objects)}
        self.sidecars: set[tuple[str, str]] = set()  # callers seen reporting as a source: they have a sidecar
        self.tls_memo: dict[tuple, tuple[str, ConfigObject | None]] = {}
        self._by_ns: dict[str, list[Workload]] | None = None
        self._rbac: dict[int, dict[str, Any]] = {}

    def in_namespace(self, ns: str) -> list[Workload]:
        """The workloads of one namespace (indexed on first use)."""
        if self._by_ns is None:
            self._by_ns = {}
            for w in self.workloads.values():
                self._by_ns.setdefault(w.namespace, []).append(w)
        return self._by_ns.get(ns, [])

    def workload(self, ns: str, name: str, app: str, version: str) -> Workload:
        w = self.workloads.get((ns, name))
        if w is None:  # observed but not in the config we were given: its telemetry labels stand in
            w = Workload(name=name, namespace=ns, labels={"app": app, "version": version}, service_account="",
                         container_ports=[])
        return w

    def rbac(self, ap: ConfigObject) -> dict[str, Any]:
        """The policy's RBAC as Istio builds it, `when` conditions and request principals included. A policy
        that does not translate may match anything (its findings say why): never a silent "matches nothing"."""
        got = self._rbac.get(id(ap))
        if got is None:
            try:
                got = policies_of(ap, self.trust_domain, conditions=True)
            except ConfigError as exc:
                got = {f"ns[{ap.namespace}]-policy[{ap.name}]-rule[0]": {
                    "permissions": [{"any": True}], "principals": [{"unjudged": f"a rule that does not load ({exc})"}]}}
            self._rbac[id(ap)] = got
        return got

    def jwt_possible(self, workloads: list[Workload]) -> np.ndarray:
        """Per workload: does a RequestAuthentication apply (root namespace mesh-wide, or its namespace with
        no selector or a matching one)? Without one, requests carry no validated JWT."""
        ras = self.index.of_kind("RequestAuthentication")
        out = np.zeros(len(workloads), bool)
        for i, w in enumerate(workloads):
            for ra in ras:
                sel = (ra.spec.get("selector") or {}).get("matchLabels") or None
                if (ra.namespace == self.index.root_namespace and sel is None) or (ra.namespace == w.namespace and (
                        sel is None or all(w.labels.get(k) == v for k, v in sel.items()))):
                    out[i] = True
                    break
        return out

    def decide(self, policies: list[ConfigObject], principals: np.ndarray, ports: np.ndarray,
               enforced: bool = True, jwt: np.ndarray | None = None, req: rbac_eval.Requests | None = None
               ) -> tuple[np.ndarray, np.ndarray, list[tuple[ConfigObject, str, np.ndarray]]]:
        """(denied certainly, denied possibly, [(policy, rule name, may-match mask)]) per row, as Istio decides."""
        n = len(principals)
        deny_lo, deny_hi = np.zeros(n, bool), np.zeros(n, bool)
        allow_lo, allow_hi = np.zeros(n, bool), np.zeros(n, bool)
        has_allow = False
        blame: list[tuple[ConfigObject, str, np.ndarray]] = []
        self.last_rules: list[tuple[ConfigObject, str, str, np.ndarray, np.ndarray]] = []  # (ap, rule, action, lo, hi)
        for ap in policies:
            if _dry_run(ap) == enforced:
                continue
            action = str(ap.spec.get("action") or "ALLOW").upper()
            if action == "ALLOW":
                has_allow = True
            for rule, pol in self.rbac(ap).items():
                lo, hi = rbac_eval.policy(pol, principals, ports, jwt, req)
                self.last_rules.append((ap, rule, action, lo, hi))
                if action == "DENY":
                    deny_lo |= lo
                    deny_hi |= hi
                    blame.append((ap, rule, hi))
                elif action == "ALLOW":
                    allow_lo |= lo
                    allow_hi |= hi
        if has_allow:
            return deny_lo | ~allow_hi, deny_hi | ~allow_lo, blame
        return deny_lo, deny_hi, blame

    def route(self, host: str, client_ns: str, client_labels: dict[str, str] | None = None,
              port: int | None = None) -> tuple[list[tuple[str, str | None, float]], ConfigObject | None, str | None]:
        """The route the client's requests certainly take: [(host, subset, share)], the VirtualService, its path."""
        branches = self.routes(host, client_ns, client_labels, port)
        dests, vs, path, _ = branches[-1]
        return dests, vs, path

    def routes(self, host: str, client_ns: str, client_labels: dict[str, str] | None = None,
               port: int | None = None) -> list[tuple[list[tuple[str, str | None, float]], ConfigObject | None, str | None, str]]:
        """The HTTP routes the client's requests may take, in order: (destinations, VS, path, why).

        Matches on what telemetry knows (the caller's labels and namespace, the port, the mesh
        gateway) are judged; a route whose match also needs request attributes (uri, headers,
        method, query, authority...) *may* take some requests: it is listed with `why` naming
        them, and evaluation goes on. The last entry is the first route every remaining request
        certainly takes (why = "") - the default route, or the host itself without one."""
        out: list[tuple[list[tuple[str, str | None, float]], ConfigObject | None, str | None, str]] = []
        for vs in self.index.virtual_services(host, None, client_ns):
            for i, r in enumerate(vs.spec.get("http") or []):
                if not isinstance(r, dict):
                    continue
                dests = [d for d in r.get("route") or [] if isinstance(d, dict) and isinstance(d.get("destination"), dict)]
                if not dests:
                    continue
                verdict, unknown = match_state(r.get("match"), client_ns, client_labels, port)
                if verdict == "no":
                    continue
                weights = [float(d.get("weight", 100 if len(dests) == 1 else 0) or 0) for d in dests]
                total = sum(weights) or 1.0
                targets = [(fqdn(str(d["destination"].get("host", "")), vs.namespace or "default")
                            if "." not in str(d["destination"].get("host", "")) else str(d["destination"]["host"]),
                            d["destination"].get("subset"), w / total) for d, w in zip(dests, weights)]
                out.append((targets, vs, f"spec/http[{i}]/route", "" if verdict == "yes" else unknown))
                if verdict == "yes":
                    return out
            if out:  # Istio merges no second VirtualService for the same host: the first one decides
                break
        out.append(([(host, None, 1.0)], None, None, ""))
        return out

    def ready(self, host: str, subset: str | None, client_ns: str) -> str | None:
        """Why `host`/`subset` has no ready workload, or None when it has one."""
        svc = self.services.get(host)
        if svc is None:
            return f"no Service for host {host}"
        labels = dict(svc.selector)
        if subset:
            dr = self.index.destination_rule(host, client_ns, svc.namespace)
            named = dict(subsets(dr))
            if subset not in named:
                return f"subset {subset} is not defined by any DestinationRule for {host}"
            labels.update(named[subset])
        if not any(w.namespace == svc.namespace and all(w.labels.get(k) == v for k, v in labels.items())
                   for w in self.workloads.values()):
            what = f"subset {subset} of {host}" if subset else host
            return f"no workload matches {what} (labels {labels})"
        return None


def predict(live: list[ConfigObject], proposed: list[ConfigObject], rates: pd.DataFrame, window_s: float,
            root_namespace: str = "istio-system", trust_domain: str = "cluster.local",
            findings: bool = True, requests: pd.DataFrame | Callable[[], pd.DataFrame | None] | None = None,
            deleted: list[ConfigObject] | None = None) -> ImpactReport:
    """The impact of applying `proposed` on top of `live` and deleting `deleted` (live objects), judged on the
    traffic in `rates`. A deletion is judged like an edit: the config without the object, every edge whose
    governing objects differ re-judged; each impact names the deleted objects whose absence causes it.

    `requests`: the window's access-log rows (collector requests table, or a function reading them on first
    need), when there are any: policies on
    paths, methods, hosts and logged headers are then replayed request by request, and an edge's
    broken rate is its rate times the share of its logged requests the change would deny."""
    edges = edges_of(rates)
    report = ImpactReport(window_s=window_s, edges=len(edges), total_rps=float(edges["rps"].sum()) if len(edges) else 0.0)
    after_objs = overlay(live, proposed, deleted)
    if deleted:
        report.deleted = [{"kind": o.kind, "namespace": o.namespace, "name": o.name,
                           "source": _ref(o)["source"], "label": deletion.label(o)} for o in deleted]
    before, after = _Side(live, root_namespace, trust_domain), _Side(after_objs, root_namespace, trust_domain)
    if findings:
        report.findings = change_findings(live, after_objs)
    if edges.empty:
        return report
    before.sidecars = after.sidecars = _reporting_sources(rates)
    if callable(requests):  # read the access logs only if some policy needs request attributes, and once
        load, memo = requests, {}

        def requests() -> pd.DataFrame | None:  # noqa: F811
            if "rows" not in memo:
                memo["rows"] = load()
            return memo["rows"]
    _server_side(edges, before, after, report, requests)
    _dr_tls(edges, before, after, report)
    memo: dict[str, Any] = {}

    def failing(namespaces: set[str]) -> dict[tuple[str, str], tuple[float, float]]:  # once, on first need
        if "f" not in memo:
            memo["f"] = _failing_shares(rates, namespaces)
        return memo["f"]
    _routes(edges, before, after, report, failing)
    if _kinds_changed(before, after) - _ISTIO_KINDS:  # a Service's ports: only where a non-Istio object changed
        _ports_changed(edges, before, after, report)
    report.impacts.extend(unjudged.at_risk(edges, live, after_objs, after.workloads, root_namespace, _ref, EdgeImpact,
                                           NOT_JUDGED))
    if report.impacts:  # each impact row is one (destination workload, mTLS, principal): give the whole edge's rate
        hit = edges[edges["d_host"].isin({i.host for i in report.impacts})]  # only the hosts impacts name
        total = hit.groupby(["s_ns", "s_wl", "d_host"], sort=False)["rps"].sum()
        by_edge = {(f"{a}/{b}", h): float(v) for (a, b, h), v in total.items()}
        for i in report.impacts:
            i.edge_rps = by_edge.get((i.source, i.host), i.rps)
    if deleted and report.impacts:
        _blame_deletions(report, live, proposed, deleted, rates, window_s, root_namespace, trust_domain, requests)
    report.impacts.sort(key=lambda i: (-i.broken_rps, i.kind, i.source, i.destination))
    return report


MAX_BLAMED = 8  # deletions judged one by one to say which causes what; past this, each impact names them all


def _blame_deletions(report: ImpactReport, live: list[ConfigObject], proposed: list[ConfigObject],
                     deleted: list[ConfigObject], rates: pd.DataFrame, window_s: float, root_namespace: str,
                     trust_domain: str, requests: Any) -> None:
    """Name on each impact the deleted objects whose absence causes it. One deletion alone: it causes all
    of them (nothing else changed). Several, or with edits: each deletion is replayed alone and an impact
    its replay also shows is its doing; an impact no single deletion shows comes from their combination
    (all named) or, beside edits, from the edits (none named). An impact without a rule of the new config
    (a route that falls back to the host) points at the deleted object."""
    names = [deletion.label(o) for o in deleted]
    if len(deleted) == 1 and not proposed:
        by = {(i.kind, i.source, i.destination): names for i in report.impacts}
    elif len(deleted) > MAX_BLAMED:
        by = {(i.kind, i.source, i.destination): names for i in report.impacts}
    else:
        by = {}
        for o, name in zip(deleted, names):
            alone = predict(live, [], rates, window_s, root_namespace, trust_domain, findings=False,
                            requests=requests, deleted=[o])
            for i in alone.impacts:
                by.setdefault((i.kind, i.source, i.destination), []).append(name)
    for i in report.impacts:
        i.deleted = by.get((i.kind, i.source, i.destination), [] if proposed else names)
        if i.rule is None and len(i.deleted) == 1:
            i.rule = _ref(deleted[names.index(i.deleted[0])])


def _reporting_sources(rates: pd.DataFrame) -> set[tuple[str, str]]:
    """(namespace, workload) of every caller whose own proxy reported requests: it runs a sidecar."""
    src = rates[(rates[schema.METRIC] == schema.ISTIO_REQUESTS_TOTAL)
                & (rates[schema.REPORTER].astype(str) == "source")] if schema.REPORTER in rates.columns else rates.iloc[:0]
    if src.empty or schema.SOURCE_WORKLOAD not in src.columns:
        return set()
    pairs = src[[schema.SOURCE_WORKLOAD_NAMESPACE, schema.SOURCE_WORKLOAD]].astype(str).drop_duplicates()
    return set(pairs.itertuples(index=False, name=None))


def _port_of(side: _Side, host: str) -> int:
    svc = side.services.get(host)
    return svc.ports[0].target_port if svc is not None and len(svc.ports) == 1 else 0


_WKEY = ["d_ns", "d_wl", "d_app", "d_ver", "d_host"]


def _server_side(edges: pd.DataFrame, before: _Side, after: _Side, report: ImpactReport,
                 requests: Any = None) -> None:
    """mTLS and authorization: decided per destination (workload, host), evaluated only where the
    governing objects changed, over all the edges of those destinations at once."""
    scope = _changed_scope(before, after)
    if scope is not None and not scope:
        return
    dests = edges[_WKEY].drop_duplicates()
    dests = dests[dests["d_wl"] != "unknown"]
    if scope is not None and "*" not in scope:  # only namespaces whose governing objects changed
        dests = dests[dests["d_ns"].isin(scope)]
    rows = []
    for d_ns, d_wl, d_app, d_ver, host in dests.itertuples(index=False):
        wb, wa = before.workload(d_ns, d_wl, d_app, d_ver), after.workload(d_ns, d_wl, d_app, d_ver)
        pb, pa = before.index.authorization_policies(wb), after.index.authorization_policies(wa)
        port = _port_of(after, host)
        mb, ma = before.index.mtls_mode(wb, port or None), after.index.mtls_mode(wa, port or None)
        sig = (tuple(map(id, pb)), tuple(map(id, pa)))
        if sig[0] != sig[1] or (ma != mb and ma in ("STRICT", "DISABLE")):
            rows.append((d_ns, d_wl, d_app, d_ver, host, port, mb, ma, sig, wa, pb, pa))
    if not rows:
        return
    changed = pd.DataFrame(rows, columns=[*_WKEY, "port", "mb", "ma", "sig", "wa", "pb", "pa"])
    hit = edges.merge(changed, on=_WKEY, how="inner")
    # mTLS: plaintext edges to destinations that become STRICT, unless the change makes their client send mTLS
    plain = hit[(hit["ma"] == "STRICT") & (hit["mb"] != "STRICT") & (hit["mtls"] != "mutual_tls")]
    refs: dict[tuple, dict[str, Any] | None] = {}
    for r in plain.itertuples(index=False):
        k = (r.d_ns, r.d_wl)
        sends, why, _ = _transport(r.s_ns, r.s_wl, r.d_host, r.wa, r.mb, r.ma, False, before, after)
        if sends in ("mtls", "istio_mutual"):
            continue
        if k not in refs:
            pa_obj = _deciding_peer_auth(after, r.wa)
            refs[k] = _ref(pa_obj, "spec/mtls/mode") if pa_obj is not None else None
        report.impacts.append(EdgeImpact(
            MTLS, f"{r.s_ns}/{r.s_wl}", f"{r.d_ns}/{r.d_wl}", r.d_host, float(r.rps), float(r.rps),
            f"{r.s_ns}/{r.s_wl} sends plaintext{why}; the workload's mTLS mode becomes STRICT (was {r.mb})", refs[k]))
    # mTLS: callers that keep insisting on Istio mTLS (a DestinationRule's ISTIO_MUTUAL) to a workload now DISABLE
    tls = hit[(hit["ma"] == "DISABLE") & (hit["mb"] != "DISABLE") & (hit["mtls"] == "mutual_tls")]
    for r in tls.itertuples(index=False):
        sends, why, dr = _transport(r.s_ns, r.s_wl, r.d_host, r.wa, r.mb, r.ma, True, before, after)
        if sends == "istio_mutual":
            pa_obj = _deciding_peer_auth(after, r.wa)
            report.impacts.append(EdgeImpact(
                MTLS, f"{r.s_ns}/{r.s_wl}", f"{r.d_ns}/{r.d_wl}", r.d_host, float(r.rps), float(r.rps),
                f"{r.s_ns}/{r.s_wl} sends Istio mTLS{why}; the workload's mTLS mode becomes DISABLE (plaintext only, "
                f"was {r.mb})", _ref(pa_obj, "spec/mtls/mode") if pa_obj is not None else None))
    # authorization: every destination with the same (before, after) policies is one evaluation
    authz = hit[hit["sig"].map(lambda s: s[0] != s[1])]
    for _, grp in authz.groupby("sig", sort=False):
        _authz(grp, before, after, grp["pb"].iat[0], grp["pa"].iat[0], report, requests)


_ROUTING_ONLY = frozenset({"VirtualService", "DestinationRule", "ServiceEntry", "Gateway", "Sidecar"})


def _changed_scope(before: _Side, after: _Side) -> set[str] | None:
    """Namespaces whose server-side decisions may change ("*": all); None when anything else changed
    (workloads, services: evaluate everything). Objects the overlay kept are the same objects on both sides."""
    b = {id(o): o for o in before.index.objects}
    a = {id(o): o for o in after.index.objects}
    diff = [o for k, o in b.items() if k not in a] + [o for k, o in a.items() if k not in b]
    scope: set[str] = set()
    for o in diff:
        if o.kind in _ROUTING_ONLY:
            continue
        if o.kind not in ("PeerAuthentication", "AuthorizationPolicy"):
            return None
        scope.add("*" if o.namespace == after.index.root_namespace else str(o.namespace))
    return scope


def _client_tls(side: _Side, s_ns: str, host: str, w: Workload) -> tuple[str, ConfigObject | None]:
    """The DestinationRule `tls.mode` the caller's sidecar applies to `host` ("" = auto mTLS), and that rule.

    Port- and subset-level settings count: the subset is the one the caller's route names whose labels
    select the destination workload (a subset's policy applies only where a route sends to it). Memoised
    per side: every caller of a namespace shares its answer."""
    key = (s_ns, host, tuple(sorted(w.labels.items())), w.namespace)
    got = side.tls_memo.get(key)
    if got is None:
        got = side.tls_memo[key] = _client_tls_uncached(side, s_ns, host, w)
    return got


def _client_tls_uncached(side: _Side, s_ns: str, host: str, w: Workload) -> tuple[str, ConfigObject | None]:
    svc = side.services.get(host)
    dr = side.index.destination_rule(host, s_ns, svc.namespace if svc is not None else w.namespace)
    if dr is None:
        return "", None
    named = dict(subsets(dr))
    routed = {sub for h, sub, _ in side.route(host, s_ns)[0] if h == host and sub in named}
    subset = next((sub for sub in sorted(routed) if all(w.labels.get(k) == v for k, v in named[sub].items())), None)
    tp = traffic_policy(dr, _service_port(side, host) or 0, subset)
    return tls_mode(tp.get("tls")) or "", dr  # a tls block without a mode is DISABLE (Istio), not auto mTLS


def _transport(s_ns: str, s_wl: str, host: str, w: Workload, mb: str, ma: str, observed_mtls: bool,
               before: _Side, after: _Side) -> tuple[str, str, ConfigObject | None]:
    """What the caller would send after the change: "plain", "mtls" (auto), "istio_mutual" (insisted on), or
    "tls_origination" (SIMPLE/MUTUAL); with a clause saying why and the DestinationRule deciding it.

    The caller's DestinationRule decides, with auto mTLS when it sets no mode. A caller whose observed
    traffic differs from what its rules say before the change (plaintext where auto mTLS would encrypt)
    does not follow them (no sidecar): it keeps sending what it sends."""
    if not observed_mtls and (s_ns, s_wl) not in after.sidecars:
        return "plain", " (it reports no traffic of its own: no sidecar that a DestinationRule would steer)", None
    tb, _ = _client_tls(before, s_ns, host, w)
    expect_b = "plain" if tb == "DISABLE" or (tb == "" and mb == "DISABLE") else \
        "mtls" if tb in ("", "ISTIO_MUTUAL") else "tls_origination"
    if not observed_mtls and expect_b == "mtls":  # its rules say mTLS, yet it sent plaintext: no sidecar obeys them
        return "plain", " (it has no sidecar following its DestinationRule)", None
    ta, dr = _client_tls(after, s_ns, host, w)
    by = f" (DestinationRule {dr.namespace}/{dr.name} tls.mode {ta})" if dr is not None and ta else ""
    if ta == "DISABLE" or (ta == "" and ma == "DISABLE"):
        return "plain", by, dr
    if ta == "ISTIO_MUTUAL":
        return "istio_mutual", by, dr
    if ta == "":
        return "mtls", " (auto mTLS)", dr
    return "tls_origination", by, dr


def _dr_tls(edges: pd.DataFrame, before: _Side, after: _Side, report: ImpactReport) -> None:
    """DestinationRule TLS changes: callers of a host whose DestinationRule changed, judged against the
    destination workload's mTLS mode (after the change): plaintext to STRICT is refused, Istio mTLS insisted
    on to a DISABLE workload fails its handshake, TLS origination to a sidecar is at risk (it expects Istio
    mTLS or plaintext, not the caller's own certificates). Only hosts whose DestinationRules changed."""
    drs_b = {id(o): o for o in before.index.of_kind("DestinationRule")}
    drs_a = {id(o): o for o in after.index.of_kind("DestinationRule")}
    pats = {fqdn(str(o.spec.get("host", "")), o.namespace or "default") if "*" not in str(o.spec.get("host", ""))
            else str(o.spec.get("host")) for k, o in {**drs_b, **drs_a}.items() if (k in drs_b) != (k in drs_a)}
    if not pats:
        return
    hosts = {h for h in edges["d_host"].unique() if any(host_matches(p, h) for p in pats)}
    sel = edges[edges["d_host"].isin(hosts) & (edges["d_wl"] != "unknown")]
    done = {(i.source, i.destination) for i in report.impacts if i.kind == MTLS}
    modes: dict[tuple[str, str, str], tuple[Workload, str, str]] = {}
    for r in sel.itertuples(index=False):
        src, dst = f"{r.s_ns}/{r.s_wl}", f"{r.d_ns}/{r.d_wl}"
        if (src, dst) in done:
            continue
        key = (r.d_ns, r.d_wl, r.d_host)
        if key not in modes:
            wb, wa = before.workload(r.d_ns, r.d_wl, r.d_app, r.d_ver), after.workload(r.d_ns, r.d_wl, r.d_app, r.d_ver)
            port = _port_of(after, r.d_host) or None
            modes[key] = (wa, before.index.mtls_mode(wb, port), after.index.mtls_mode(wa, port))
        wa, mb, ma = modes[key]
        if mb == ma and _client_tls(before, r.s_ns, r.d_host, wa)[0] == _client_tls(after, r.s_ns, r.d_host, wa)[0]:
            continue  # this caller's TLS to this workload does not change
        observed = r.mtls == "mutual_tls"
        sends, why, dr = _transport(r.s_ns, r.s_wl, r.d_host, wa, mb, ma, observed, before, after)
        ref = _ref(dr, "spec/trafficPolicy") if dr is not None else None
        if sends == "plain" and ma == "STRICT" and observed:
            reason = f"{src} would send plaintext{why}; the workload's mTLS mode is STRICT"
        elif sends == "istio_mutual" and ma == "DISABLE" and observed and mb == "DISABLE":
            continue  # already so: the observed traffic got through
        elif sends == "istio_mutual" and ma == "DISABLE":
            reason = f"{src} would insist on Istio mTLS{why}; the workload's mTLS mode is DISABLE (plaintext only)"
        elif sends == "tls_origination":
            report.impacts.append(EdgeImpact(
                MTLS, src, dst, r.d_host, float(r.rps), float(r.rps),
                f"{src} would originate its own TLS{why} to a workload with a sidecar, which expects Istio mTLS or "
                f"plaintext (mode {ma}): the handshake most likely fails (the bundled mesh sends plaintext instead)",
                ref, certain=False))
            continue
        else:
            continue
        done.add((src, dst))
        report.impacts.append(EdgeImpact(MTLS, src, dst, r.d_host, float(r.rps), float(r.rps), reason, ref))


def _deciding_peer_auth(side: _Side, w: Workload) -> ConfigObject | None:
    sel = [p for p in side.index.of_kind("PeerAuthentication") if p.namespace == w.namespace
           and (p.spec.get("selector") or {}).get("matchLabels")
           and all(w.labels.get(k) == v for k, v in p.spec["selector"]["matchLabels"].items())]
    ns = [p for p in side.index.of_kind("PeerAuthentication") if p.namespace == w.namespace
          and not (p.spec.get("selector") or {}).get("matchLabels")]
    root = [p for p in side.index.of_kind("PeerAuthentication") if p.namespace == side.index.root_namespace
            and not (p.spec.get("selector") or {}).get("matchLabels")]
    for group in (sel, ns, root):
        if group:
            return sorted(group, key=lambda p: p.name)[0]
    return None


def _authz(rows: pd.DataFrame, before: _Side, after: _Side, pb: list[ConfigObject], pa: list[ConfigObject],
           report: ImpactReport, requests: Any = None) -> None:
    principals = np.where(rows["mtls"].to_numpy() == "mutual_tls", rows["principal"].to_numpy(), "").astype(object)
    ports = rows["port"].to_numpy(dtype=np.int64)
    jwt_b = jwt_a = None
    if any(rbac_eval.uses_jwt(side.rbac(ap)) for side, pols in ((before, pb), (after, pa)) for ap in pols):
        # where no RequestAuthentication applies, requests carry no JWT: matches on one are decided
        dest = rows[["d_ns", "d_wl", "d_app", "d_ver"]]
        uniq = dest.drop_duplicates()
        at = pd.MultiIndex.from_frame(uniq).get_indexer(pd.MultiIndex.from_frame(dest))
        keys = list(uniq.itertuples(index=False))
        jwt_b = before.jwt_possible([before.workload(*k) for k in keys])[at]
        jwt_a = after.jwt_possible([after.workload(*k) for k in keys])[at]
    b_lo, b_hi, _ = before.decide(pb, principals, ports, jwt=jwt_b)
    rules_b = list(before.last_rules)
    a_lo, a_hi, blame = after.decide(pa, principals, ports, jwt=jwt_a)
    certain = a_lo & ~b_hi
    maybe = a_hi & ~b_lo
    if not maybe.any():
        return
    rules = list(after.last_rules)
    logged = _request_shares(rows, requests, before, after, pb, pa, principals, ports, jwt_b, jwt_a, maybe)
    allows = [p for p in pa if not _dry_run(p) and str(p.spec.get("action") or "ALLOW").upper() == "ALLOW"]
    allow_ref = _ref(allows[0], "spec/rules") if allows else None
    allow_names = ", ".join(f"{p.namespace}/{p.name}" for p in allows)
    cols = {c: rows[c].to_numpy() for c in ("s_ns", "s_wl", "d_ns", "d_wl", "d_host", "rps", "principal")}
    for k in np.flatnonzero(maybe):
        who = cols["principal"][k] or "a plaintext peer (no identity)"
        src, dst, rps = f"{cols['s_ns'][k]}/{cols['s_wl'][k]}", f"{cols['d_ns'][k]}/{cols['d_wl'][k]}", float(cols["rps"][k])
        if k in logged:
            for imp in logged[k].impacts(src, dst, cols["d_host"][k], rps, who, allow_ref, allow_names):
                report.impacts.append(imp)
            continue
        hit = next(((ap, rule) for ap, rule, m in blame if m[k]), None)
        verb = "matches" if certain[k] else "may match"
        if hit is not None:
            ap, rule = hit
            idx = rule.rsplit("rule[", 1)[1].rstrip("]")
            ref, reason = _ref(ap, f"spec/rules[{idx}]"), f"DENY rule {rule} {verb} {who}"
        else:
            verb = "matches" if certain[k] else "certainly matches"
            ref, reason = allow_ref, f"no ALLOW rule of {allow_names} {verb} {who}"
        if not certain[k]:
            reason += _at_risk_why([(after, rules), (before, rules_b)], k, int(ports[k]))
        elif jwt_a is not None and not jwt_a[k]:
            reason += " (no RequestAuthentication applies to the workload: requests carry no validated JWT)"
        report.impacts.append(EdgeImpact(AUTHZ, src, dst, cols["d_host"][k], rps, rps, reason, ref,
                                         certain=bool(certain[k])))


# request headers Istio policies name -> the requests-table column that logs them (when the table has it)
_HEADER_COLUMNS = {"host": schema.AUTHORITY, "x-request-id": schema.REQUEST_ID, "user-agent": "user_agent",
                   "x-forwarded-for": "x_forwarded_for", "traceparent": "traceparent", ":path": schema.PATH}
_REQ_COLUMNS = (schema.SOURCE_WORKLOAD_NAMESPACE, schema.SOURCE_WORKLOAD, schema.SOURCE_PRINCIPAL,
                schema.DESTINATION_WORKLOAD_NAMESPACE, schema.DESTINATION_WORKLOAD, schema.DESTINATION_SERVICE)


def _text(frame: pd.DataFrame, col: str) -> np.ndarray:
    """A requests-table column as strings, absent values (None, NaN, "-") as ""."""
    arr = np.array(frame[col].to_numpy(dtype=object), dtype=object, copy=True)
    arr[pd.isna(arr)] = ""
    arr[arr == "-"] = ""
    return arr.astype(str).astype(object)


def _grouped(part: pd.DataFrame, key: dict[str, str], attrs: dict[str, str]) -> pd.DataFrame:
    """Distinct (key, attribute) tuples of log rows with their counts: grouped on integer codes (factorize),
    decoded and cleaned ("" for absent, host "hs" cut to its short name) for the distinct tuples only."""
    names = [*key, *attrs]
    codes, uniques = {}, {}
    for name, col in {**key, **attrs}.items():
        c, u = pd.factorize(part[col], use_na_sentinel=True)
        codes[name] = np.where(c < 0, len(u), c)
        arr = pa.array(pd.Series(np.asarray(u, dtype=object)).astype(str), type=pa.string())
        arr = pc.if_else(pc.equal(arr, "-"), "", arr)
        if name == "hs":
            arr = pc.list_element(pc.split_pattern(arr, ".", max_splits=1), 0)
        uniques[name] = np.append(np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object), "")
    g = pd.DataFrame(codes).groupby(names, sort=False).size().rename("n").reset_index()
    out = pd.DataFrame({name: uniques[name][g[name].to_numpy()] for name in names})
    out["n"] = g["n"].to_numpy()
    if "hs" in key:  # two spellings of one host (FQDN, short) are one key
        out = out.groupby(names, sort=False)["n"].sum().reset_index()
    return out


@dataclass
class _Logged:
    """One edge judged request by request over its logged requests."""

    n: int
    certain: float  # share certainly newly denied
    maybe: float  # share that may be newly denied (>= certain)
    by_rule: list[tuple[ConfigObject | None, str, float]]  # (policy, rule or "", share it denies), largest first
    example: str  # the most frequent denied request, "GET /path"
    unjudged: str  # what the logs do not carry either ("" when all is judged)

    def impacts(self, src: str, dst: str, host: str, rps: float, who: str, allow_ref: dict[str, Any] | None,
                allow_names: str) -> list[EdgeImpact]:
        out = []
        ap, rule, _ = self.by_rule[0] if self.by_rule else (None, "", 0.0)
        if ap is not None:
            idx = rule.rsplit("rule[", 1)[1].rstrip("]")
            ref = _ref(ap, f"spec/rules[{idx}]")
        else:
            ref = allow_ref
        parts = [f"DENY rule {r} matches {sh:.0%}" if a is not None else f"no ALLOW rule of {allow_names} matches {sh:.0%}"
                 for a, r, sh in self.by_rule]
        base = (f"{'; '.join(parts)} of the {self.n} logged requests from {who} (e.g. {self.example})")
        if self.certain > 0:
            out.append(EdgeImpact(AUTHZ, src, dst, host, rps, rps * self.certain, base, ref, certain=True,
                                  share=self.certain, requests=self.n))
        if self.maybe > self.certain:
            extra = self.maybe - self.certain
            out.append(EdgeImpact(AUTHZ, src, dst, host, rps, rps * extra,
                                  f"{extra:.0%} of the {self.n} logged requests from {who} may be denied"
                                  + (self.unjudged or ""), ref, certain=False, share=extra, requests=self.n))
        return out


def _request_shares(rows: pd.DataFrame, requests: Any, before: _Side, after: _Side,
                    pb: list[ConfigObject], pa: list[ConfigObject], principals: np.ndarray, ports: np.ndarray,
                    jwt_b: np.ndarray | None, jwt_a: np.ndarray | None, maybe: np.ndarray) -> dict[int, _Logged]:
    """Per edge row k (of those the edge-level replay could not settle) whose requests are in the access logs:
    the policies replayed over its logged requests. Distinct (edge, path, method, headers, port) tuples are
    evaluated once with their counts: vectorised masks over the window, never a loop per request."""
    if requests is None:
        return {}
    pols = [b.rbac(ap) for b, ps in ((before, pb), (after, pa)) for ap in ps]
    need_path = any(rbac_eval.uses_path(p) for p in pols)
    headers = set().union(*(rbac_eval.headers_used(p) for p in pols)) if pols else set()
    if not need_path and not headers:
        return {}  # nothing request-level: the edge-level answer stands
    if callable(requests):
        requests = requests()
    if requests is None or len(requests) == 0 or not all(c in requests.columns for c in _REQ_COLUMNS):
        return {}
    open_rows = np.flatnonzero(maybe)
    sub = rows.iloc[open_rows]
    edges = pd.DataFrame({"_k": open_rows, "principal": principals[open_rows].astype(str),
                          "s_ns": sub["s_ns"].astype(str).to_numpy(), "s_wl": sub["s_wl"].astype(str).to_numpy(),
                          "d_ns": sub["d_ns"].astype(str).to_numpy(), "d_wl": sub["d_wl"].astype(str).to_numpy(),
                          "hs": sub["d_host"].astype(str).str.split(".", n=1).str[0].to_numpy()})
    req = requests
    frame_cols: dict[str, str] = {}
    if need_path and schema.PATH in req.columns:
        frame_cols["path"] = schema.PATH
    if ":method" in headers and schema.METHOD in req.columns:
        frame_cols["method"] = schema.METHOD
    for h in sorted(headers - {":method"}):
        col = _HEADER_COLUMNS.get("host" if h == ":authority" else h)
        if col is not None and col in req.columns:
            frame_cols[f"h:{'host' if h == ':authority' else h}"] = col
    rep = req[schema.REPORTER] if schema.REPORTER in req.columns else pd.Series("destination", index=req.index)
    if schema.UPSTREAM_CLUSTER in req.columns:  # names the port: inbound|9080||, outbound|9080||host
        frame_cols["cluster"] = schema.UPSTREAM_CLUSTER
    x_parts = []
    # the caller's own log line first: it names the caller workload exactly (an inbound line knows the caller only
    # by its peer identity, which versions sharing a service account share); hosts keyed by short name (a server
    # line has the host from SNI or the authority)
    src = req[((rep == "source") & req[schema.SOURCE_WORKLOAD].isin(set(edges["s_wl"]))).to_numpy()]
    if len(src):
        key = {"s_ns": schema.SOURCE_WORKLOAD_NAMESPACE, "s_wl": schema.SOURCE_WORKLOAD, "hs": schema.DESTINATION_SERVICE}
        g = _grouped(src, key, frame_cols)
        x_parts.append(g.merge(edges[["_k", *key]], on=list(key), how="inner"))
    covered = set(x_parts[0]["_k"]) if x_parts else set()
    rest = edges[~edges["_k"].isin(covered)]
    # callers without a sidecar log of their own (outside the mesh, plaintext): the server's line
    dest = req[((rep == "destination") & req[schema.DESTINATION_WORKLOAD].isin(set(rest["d_wl"]))).to_numpy()] \
        if len(rest) else req.iloc[0:0]
    if len(dest):
        key = {"principal": schema.SOURCE_PRINCIPAL, "d_ns": schema.DESTINATION_WORKLOAD_NAMESPACE,
               "d_wl": schema.DESTINATION_WORKLOAD, "hs": schema.DESTINATION_SERVICE}
        g = _grouped(dest, key, frame_cols)
        g.loc[g["principal"] == "unknown", "principal"] = ""
        x_parts.append(g.merge(rest[["_k", *key]], on=list(key), how="inner"))
    x = pd.concat(x_parts, ignore_index=True) if x_parts else pd.DataFrame()
    if x.empty:
        return {}
    k = x["_k"].to_numpy()
    n = x["n"].to_numpy(dtype=float)
    port = ports[k].copy()
    if "cluster" in x.columns:  # the port each request arrived on: inbound|9080|| is the container port;
        # outbound|9080||host the Service port, mapped to its target port
        parts = x["cluster"].fillna("").astype(str).str.extract(r"^(inbound|outbound)\|(\d+)\|")
        num = pd.to_numeric(parts[1], errors="coerce").fillna(0).to_numpy(dtype=np.int64)
        hosts = rows["d_host"].to_numpy()[k]
        targets = {(h, p.port): p.target_port for h in set(hosts) if (svc := after.services.get(h)) is not None
                   for p in svc.ports}
        out_port = np.array([targets.get((h, int(p)), 0) for h, p in zip(hosts, num)], np.int64) \
            if (parts[0] == "outbound").any() else np.zeros(len(k), np.int64)  # per distinct row, not per request
        got_port = np.where(parts[0].to_numpy() == "inbound", num, out_port)
        port = np.where(got_port > 0, got_port, port)
    r = rbac_eval.Requests(
        paths=x["path"].str.split("?", n=1).str[0].to_numpy(dtype=object) if "path" in x.columns else None,
        methods=x["method"].to_numpy(dtype=object) if "method" in x.columns else None,
        headers={c[2:]: x[c].to_numpy(dtype=object) for c in x.columns if c.startswith("h:")})
    jb = jwt_b[k] if jwt_b is not None else None
    ja = jwt_a[k] if jwt_a is not None else None
    p = principals[k]
    b_lo, b_hi, _ = before.decide(pb, p, port, jwt=jb, req=r)
    rules_b = list(before.last_rules)
    a_lo, a_hi, blame = after.decide(pa, p, port, jwt=ja, req=r)
    rules_a = list(after.last_rules)
    cert = a_lo & ~b_hi
    mayb = a_hi & ~b_lo
    carried = r.carried()
    out: dict[int, _Logged] = {}
    order = np.argsort(k, kind="stable")
    ks, starts = np.unique(k[order], return_index=True)
    bounds = [*starts[1:], len(order)]
    methods = r.methods if r.methods is not None else np.full(len(k), "", object)
    paths = r.paths if r.paths is not None else np.full(len(k), "", object)
    for kk, a, b in zip(ks, starts, bounds):  # one pass per edge (not per request) to word the answer
        sel = order[a:b]
        total = float(n[sel].sum())
        if total <= 0:
            continue
        c_share, m_share = float(n[sel][cert[sel]].sum() / total), float(n[sel][mayb[sel]].sum() / total)
        by_rule: list[tuple[ConfigObject | None, str, float]] = []
        denied = sel[cert[sel]] if cert[sel].any() else sel[mayb[sel]]  # what the reason's shares count
        claimed = np.zeros(len(denied), bool)
        for ap, rule, m in blame:
            hit = m[denied] & ~claimed
            if hit.any():
                by_rule.append((ap, rule, float(n[denied][hit].sum() / total)))
                claimed |= hit
        if (~claimed).any():
            by_rule.append((None, "", float(n[denied][~claimed].sum() / total)))
        by_rule.sort(key=lambda t: -t[2])
        example = ""
        if len(denied):
            top = denied[int(np.argmax(n[denied]))]
            example = f"{methods[top] or '?'} {paths[top] or '?'}".strip()
        why = ""
        if m_share > c_share:
            names: list[str] = []
            for side_rules, side in ((rules_a, after), (rules_b, before)):
                for ap, rule, _, lo, hi in side_rules:
                    if (hi[sel] & ~lo[sel]).any():
                        names += rbac_eval.unjudged(side.rbac(ap).get(rule) or {}, carried)
            names = list(dict.fromkeys(names))
            if names:
                why = f"; at risk, not judged: it hinges on {', '.join(names)}, which neither metrics nor access logs carry"
        out[int(kk)] = _Logged(int(total), c_share, m_share, by_rule, example or "-", why)
    return out


def _at_risk_why(sides: list[tuple[_Side, list]], k: int, port: int) -> str:
    """Which conditions of the rules that may (not certainly) apply to edge k telemetry cannot judge
    (the proposed config's rules first, then the live one's)."""
    names: list[str] = []
    for side, ap, rule, lo, hi in ((s, *r[:2], *r[3:]) for s, rules in sides for r in rules):
        if hi[k] and not lo[k]:
            pol = side.rbac(ap).get(rule) or {}
            names += rbac_eval.unjudged(pol)
            if not port and '"destination_port"' in repr(pol).replace("'", '"'):
                names.append("destination port (the Service has several)")
    names = list(dict.fromkeys(names))
    if not names:
        return ""
    jwt = any("(JWT)" in n for n in names)
    return (f"; at risk, not judged: it hinges on {', '.join(names)}, which telemetry does not carry"
            + ("; whether callers present such a token cannot be told from traffic" if jwt else ""))


# match conditions telemetry can judge, and those it cannot (requests' own attributes)
_JUDGED = frozenset({"sourceLabels", "sourceNamespace", "port", "gateways", "name"})


def match_state(matches: Any, client_ns: str, labels: dict[str, str] | None, port: int | None) -> tuple[str, str]:
    """("yes" | "no" | "maybe", what could not be judged) for an HTTP route's `match` list (OR of ANDs)."""
    if not matches:
        return "yes", ""
    if not isinstance(matches, list):
        return "maybe", "an unreadable match"
    best, unknown = "no", []
    for m in matches:
        if not isinstance(m, dict):
            continue
        state, needs = "yes", sorted(k for k in m if k not in _JUDGED)
        src = m.get("sourceLabels")
        if isinstance(src, dict) and (labels is None or any(labels.get(k) != str(v) for k, v in src.items())):
            state = "no" if labels is not None else "maybe"
        if m.get("sourceNamespace") not in (None, client_ns):
            state = "no"
        if m.get("port") is not None and port is not None and int(m["port"]) != port:
            state = "no"
        elif m.get("port") is not None and port is None and state == "yes":
            state, needs = "maybe", [*needs, "port"]
        gws = m.get("gateways")
        if isinstance(gws, list) and gws and "mesh" not in gws:
            state = "no"  # bound to gateways only: sidecar traffic never takes it
        if state == "yes" and needs:
            state = "maybe"
        if state == "yes":
            return "yes", ""
        if state == "maybe":
            best = "maybe"
            unknown += needs or ["sourceLabels"]
    return best, ", ".join(sorted(set(unknown)))


def _failing_shares(rates: pd.DataFrame, namespaces: set[str]) -> dict[tuple[str, str], tuple[float, float]]:
    """(requests/s, share answered 5xx) per destination workload (namespace, name) of `namespaces`, as its
    sidecar reported. The namespace filter comes first: only the few rows of the routed hosts are decoded."""
    if schema.RESPONSE_CODE not in rates.columns or schema.REPORTER not in rates.columns:
        return {}
    d = rates[rates[schema.DESTINATION_WORKLOAD_NAMESPACE].isin(namespaces)]
    d = d[(d[schema.METRIC] == schema.ISTIO_REQUESTS_TOTAL) & (d[schema.REPORTER].astype(str) == "destination")]
    if d.empty:
        return {}
    code = d[schema.RESPONSE_CODE].astype(str).astype("category")
    five = np.asarray([str(c).startswith("5") for c in code.cat.categories], dtype=bool)[code.cat.codes.to_numpy()]
    rps = pd.to_numeric(d[schema.RATE], errors="coerce").fillna(0.0).to_numpy()
    f = pd.DataFrame({"ns": d[schema.DESTINATION_WORKLOAD_NAMESPACE].astype(str).to_numpy(),
                      "wl": d[schema.DESTINATION_WORKLOAD].astype(str).to_numpy(), "rps": rps, "bad": np.where(five, rps, 0.0)})
    g = f.groupby(["ns", "wl"], sort=False)[["rps", "bad"]].sum()
    return {k: (float(r), float(b) / float(r)) for k, r, b in zip(g.index, g["rps"], g["bad"]) if r > 0}


def _failing_share(side: _Side, host: str, subset: str | None, client_ns: str,
                   failing: dict[tuple[str, str], tuple[float, float]]) -> float | None:
    """The share of requests the workloads behind host/subset answer 5xx today (rate-weighted); None unobserved."""
    svc = side.services.get(host)
    if svc is None:
        return None
    labels = dict(svc.selector)
    if subset:
        labels.update(dict(subsets(side.index.destination_rule(host, client_ns, svc.namespace))).get(subset) or {})
    seen = [failing[(w.namespace, w.name)] for w in side.in_namespace(svc.namespace)
            if (w.namespace, w.name) in failing and all(w.labels.get(k) == v for k, v in labels.items())]
    total = sum(r for r, _ in seen)
    return sum(r * b for r, b in seen) / total if total > 0 else None


def _routes(edges: pd.DataFrame, before: _Side, after: _Side, report: ImpactReport,
            failing: Callable[[set[str]], dict[tuple[str, str], tuple[float, float]]] | None = None) -> None:
    """Route changes per (client, host): traffic sent to nothing ready, and traffic shifted. Matches the
    metrics can judge (caller labels/namespace, port, gateways) are applied; requests a route matches
    only by path/headers/method are reported "at risk" (certain=False) with the whole edge's rate."""
    drs_b = {id(o): o for o in before.index.of_kind("DestinationRule")}
    drs_a = {id(o): o for o in after.index.of_kind("DestinationRule")}
    dr_hosts = [fqdn(str(o.spec.get("host", "")), o.namespace or "default") if "*" not in str(o.spec.get("host", ""))
                else str(o.spec.get("host")) for k, o in {**drs_b, **drs_a}.items() if (k in drs_b) != (k in drs_a)]
    changed = {h for h in edges["d_host"].unique()
               if [id(v) for v in before.index.virtual_services(h)] != [id(v) for v in after.index.virtual_services(h)]
               or any(host_matches(p, h) for p in dr_hosts)}
    if _kinds_changed(before, after) - _ISTIO_KINDS:  # Services, Deployments...: what the routes land on
        changed |= _backends_changed(set(edges["d_host"].unique()), before, after)
    if not changed:
        return
    sel = edges[edges["d_host"].isin(changed)]
    for (s_ns, s_wl, host), rows in sel.groupby(["s_ns", "s_wl", "d_host"], sort=False):
        rps = float(rows["rps"].sum())
        client = after.workloads.get((s_ns, s_wl)) or before.workloads.get((s_ns, s_wl))
        labels = dict(client.labels) if client is not None else None
        port = _service_port(after, host)
        bb, ba = before.routes(host, s_ns, labels, port), after.routes(host, s_ns, labels, port)
        rb, ra, (_, vs, path, _) = bb[-1][0], ba[-1][0], ba[-1]
        share_b: dict[str, float] = {}
        share_a: dict[str, float] = {}
        broken_b = sum(sh for h, sub, sh in rb if before.ready(h, sub, s_ns))
        reasons = []
        broken_a = 0.0
        for h, sub, sh in rb:
            share_b[f"{h}{'/' + sub if sub else ''}"] = share_b.get(f"{h}{'/' + sub if sub else ''}", 0.0) + sh
        for h, sub, sh in ra:
            share_a[f"{h}{'/' + sub if sub else ''}"] = share_a.get(f"{h}{'/' + sub if sub else ''}", 0.0) + sh
            why = after.ready(h, sub, s_ns)
            if why and sh > 0:
                broken_a += sh
                reasons.append(f"{sh:.0%} routed to {h}{'/' + sub if sub else ''}: {why}")
        ref = _ref(vs, path) if vs is not None else None
        new_broken = max(0.0, broken_a - broken_b) * rps
        if new_broken > 0:
            report.impacts.append(EdgeImpact(UNREADY, f"{s_ns}/{s_wl}", host, host, rps, new_broken,
                                             "; ".join(reasons), ref))
        _maybe_routes(report, s_ns, s_wl, host, rps, before, after, bb[:-1], ba[:-1])
        moved = {k: (share_a.get(k, 0.0) - share_b.get(k, 0.0)) * rps for k in set(share_a) | set(share_b)}
        moved = {k: round(v, 6) for k, v in moved.items() if abs(v) > 1e-9}
        if moved and failing is not None:
            nss = {svc.namespace for h in changed for svc in (after.services.get(h), before.services.get(h)) if svc}
            _shift_onto_failing(report, s_ns, s_wl, host, rps, rb, ra, before, after, lambda: failing(nss), ref)
        _to_other_service(report, s_ns, s_wl, host, rps, rb, ra, ref, after)
        if moved:
            observed = rows.groupby("d_wl")["rps"].sum().to_dict()
            report.impacts.append(EdgeImpact(
                SHIFT, f"{s_ns}/{s_wl}", host, host, rps, 0.0,
                "the default route's destinations change: " + ", ".join(f"{k} {v:+.2f} rps" for k, v in sorted(moved.items()))
                + f" (observed today: {', '.join(f'{w} {v:.2f} rps' for w, v in sorted(observed.items()))})",
                ref, shift=moved))


_ISTIO_KINDS = frozenset({*_ROUTING_ONLY, "PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication",
                          "EnvoyFilter", "WasmPlugin", "Telemetry"})


def _kinds_changed(before: _Side, after: _Side) -> set[str]:
    """Kinds of the objects the change adds, replaces or deletes (the overlay keeps the others as the same objects)."""
    got = getattr(after, "_kinds_changed", None)
    if got is None:
        b = {id(o) for o in before.index.objects}
        a = {id(o) for o in after.index.objects}
        got = {o.kind for o in before.index.objects if id(o) not in a} | {o.kind for o in after.index.objects if id(o) not in b}
        after._kinds_changed = got
    return got


def _backends_changed(hosts: set[str], before: _Side, after: _Side) -> set[str]:
    """Hosts whose backends may differ though no VirtualService or DestinationRule changed: the Service itself
    (deleted, created, selector or ports edited) or a workload its selector picks before or after the change
    (a pod template relabelled, a Deployment deleted or added), which decide what the Service and each subset
    select. Their routes are walked again: a subset whose labels no pod carries any more is as unready as an
    undefined one. Only the Services that select a changed workload count: one relabelled pod re-walks its own
    host, not its namespace's."""
    keys = before.workloads.keys() | after.workloads.keys()
    moved: dict[str, list[dict[str, str]]] = {}  # namespace -> label sets of changed workloads (before and after)
    for k in keys:
        lb, la = getattr(before.workloads.get(k), "labels", None), getattr(after.workloads.get(k), "labels", None)
        if lb != la:
            moved.setdefault(k[0], []).extend(x for x in (lb, la) if x is not None)
    out = set()
    for h in hosts:
        sb, sa = before.services.get(h), after.services.get(h)
        if sb != sa:
            out.add(h)
        elif sb is not None and sb.namespace in moved and any(
                all(lab.get(k) == v for k, v in sb.selector.items()) for lab in moved[sb.namespace]):
            out.add(h)
    return out


def _to_other_service(report: ImpactReport, s_ns: str, s_wl: str, host: str, rps: float, rb: list, ra: list,
                      ref: dict[str, Any] | None, after: _Side) -> None:
    """A route that newly sends a host's requests to another service (a VirtualService's `hosts` list edited to
    take in this host, a destination host changed): the requests reach pods written for other paths and
    answers, so they may fail (404s) or get wrong answers; what that service does with them is not in the
    metrics. At risk (MS5007), not a mere shift of weights."""
    def share_to_others(routes: list) -> dict[str, float]:
        out: dict[str, float] = {}
        for h, _, sh in routes:
            if h != host and sh > 0:
                out[h] = out.get(h, 0.0) + sh
        return out

    was, now = share_to_others(rb), share_to_others([d for d in ra if after.ready(d[0], d[1], s_ns) is None])
    grown = {h: sh - was.get(h, 0.0) for h, sh in now.items() if sh - was.get(h, 0.0) > 1e-9}  # nothing ready: MS5003
    if not grown:
        return
    share = sum(grown.values())
    report.impacts.append(EdgeImpact(
        NOT_JUDGED, f"{s_ns}/{s_wl}", host, host, rps, share * rps,
        f"not judged: the route would send {share:.0%} of the requests for {host} to another service "
        f"({', '.join(sorted(grown))}), whose pods may not serve {host.split('.')[0]}'s paths (404) or answer "
        "differently; what they do with these requests is not in the metrics", ref, certain=False))


def _ports_changed(edges: pd.DataFrame, before: _Side, after: _Side, report: ImpactReport) -> None:
    """A Service whose ports change (renamed, another protocol or target port) keeps its host but may change
    which listener, protocol (Istio reads it from the port's name or appProtocol) and routes its traffic takes,
    and whether anything listens on the new target port: none of that is replayed, so the Service's observed
    edges are at risk (MS5007), never silently safe. A Service deleted or created is judged by the routes."""
    done = {(i.source, i.host) for i in report.impacts if i.broken_rps > 0}
    for h in edges["d_host"].unique():
        sb, sa = before.services.get(h), after.services.get(h)
        if sb is None or sa is None or sb.ports == sa.ports:
            continue
        was = ", ".join(f"{p.name or '-'} {p.port}->{p.target_port} {p.protocol}" for p in sb.ports)
        now = ", ".join(f"{p.name or '-'} {p.port}->{p.target_port} {p.protocol}" for p in sa.ports)
        obj = next((o for o in after.index.of_kind("Service") if o.name == sa.name and o.namespace == sa.namespace), None)
        rows = edges[edges["d_host"] == h].groupby(["s_ns", "s_wl"], sort=False)["rps"].sum()
        for (s_ns, s_wl), rps in rows.items():
            if (f"{s_ns}/{s_wl}", h) in done:
                continue
            report.impacts.append(EdgeImpact(
                NOT_JUDGED, f"{s_ns}/{s_wl}", h, h, float(rps), float(rps),
                f"not judged: the Service's ports change ({was} -> {now}); which listener, protocol and routes its "
                "traffic then takes, and whether the pods listen on the new target port, is not replayed",
                _ref(obj, "spec/ports") if obj is not None else None, certain=False))


def _shift_onto_failing(report: ImpactReport, s_ns: str, s_wl: str, host: str, rps: float, rb: list, ra: list,
                        before: _Side, after: _Side, failing: Callable[[], dict], ref: dict[str, Any] | None) -> None:
    """A shift onto destinations that fail today: the moved requests would fail as those do (their observed 5xx
    share), less what failed where they came from. An estimate from today's behaviour, so at risk, not certain;
    a destination with no traffic today is not judged (its share is unknown)."""
    memo = failing()
    if not memo:
        return
    exp_b = exp_a = 0.0
    worst = []
    for side, routes, sign in ((before, rb, -1), (after, ra, 1)):
        for h, sub, sh in routes:
            if sh <= 0:
                continue
            f = _failing_share(side, h, sub, s_ns, memo)
            if f is None:
                if sign > 0 and side.ready(h, sub, s_ns) is None:
                    return  # a ready destination never observed: no basis for an estimate
                continue
            if sign < 0:
                exp_b += sh * f
            else:
                exp_a += sh * f
                if f > 0:
                    worst.append(f"{sh:.0%} to {h}{'/' + sub if sub else ''}, which answers {f:.1%} of its requests 5xx today")
    extra = (exp_a - exp_b) * rps
    if extra > 1e-9 and exp_a - exp_b >= 0.005:
        report.impacts.append(EdgeImpact(
            ONTO_FAILING, f"{s_ns}/{s_wl}", host, host, rps, extra,
            f"the route would send {'; '.join(worst)}: {exp_a:.1%} of this edge's requests would fail as they do "
            f"there (was {exp_b:.1%})", ref, certain=False))


def _service_port(side: _Side, host: str) -> int | None:
    svc = side.services.get(host)
    return svc.ports[0].port if svc is not None and len(svc.ports) == 1 else None


def _maybe_routes(report: ImpactReport, s_ns: str, s_wl: str, host: str, rps: float, before: _Side, after: _Side,
                  maybe_b: list, maybe_a: list) -> None:
    """Routes the change adds (or changes) that only some requests may take: at risk, never certain."""
    known = {(tuple(d), why) for d, _, _, why in maybe_b}
    for dests, vs, path, why in maybe_a:
        if (tuple(dests), why) in known:
            continue
        bad = [(h, sub, sh, after.ready(h, sub, s_ns)) for h, sub, sh in dests]
        bad = [(h, sub, sh, w) for h, sub, sh, w in bad if w and sh > 0]
        if not bad:
            continue
        share = sum(sh for _, _, sh, _ in bad)
        text = "; ".join(f"{sh:.0%} routed to {h}{'/' + sub if sub else ''}: {w}" for h, sub, sh, w in bad)
        report.impacts.append(EdgeImpact(
            UNREADY, f"{s_ns}/{s_wl}", host, host, rps, share * rps,
            f"requests matching {path} by {why} (not in metrics; up to all {rps:.3g} rps of this edge) would go "
            f"where nothing is ready: {text}", _ref(vs, path) if vs is not None else None, certain=False))


def change_findings(live: list[ConfigObject], after: list[ConfigObject]) -> list[dict[str, Any]]:
    """Config findings present with the change applied and absent without it."""
    from diagnose.analysis import analyze
    from mesh.config import Snapshot

    before = {f.fingerprint for f in analyze(Snapshot(live))}
    return [f.to_dict() for f in analyze(Snapshot(after)) if f.fingerprint not in before]
