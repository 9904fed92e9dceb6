"""Change-aware findings: which config changes in the minutes before a finding's onset most likely caused it.

A change is ranked first by how directly it touches the finding, then by how
close before the onset it was:

  4 the blamed object itself (the finding's resource or a related object)
  3 the same scope: an object naming the finding's host, or selecting (by
    labels) its workload or service, or a workload's own behaviour change,
    or a policy with no selector, which applies to every workload of its
    namespace (of the mesh, in the root namespace)
  2 the same namespace
  1 elsewhere
  0 no net change: the object was back as it was before the onset (a change
    and its revert, a rename that kept the content), so none of its changes
    can explain something that began after them

Inside scope, an object that names the host (a DestinationRule's `host`, a
VirtualService's `hosts` or route destination) ranks above one that only
selects workloads, and that one above a namespace- or mesh-wide policy: the
more precisely a change aims at the hurt traffic, the likelier it is the
cause. An object naming the host from another namespace but exported
(`exportTo`) to none of the finding's namespaces cannot touch its traffic.
Works on plain dicts (finding `to_dict()` and journal entries) so the UI,
alerts and reports share it.
"""
from __future__ import annotations

import json
from typing import Any

import yaml

from mesh.journal import field_diff, is_change, summary

LOOKBACK_S = 900.0  # changes older than this before the onset are not considered
AFTER_ONSET_S = 2.0  # the loop sees a finding a tick late; a change this little after onset may still be its cause
TOP = 3
TIERS = {4: "the blamed object", 3: "same host or workload", 2: "same namespace", 1: "elsewhere",
         0: "no net change"}
HOST_KEYS = ("host", "hosts")
ROOT_NAMESPACE = "istio-system"  # Istio's default meshConfig.rootNamespace
# Kinds whose object without a selector applies to every workload of its namespace (of the mesh in the root one).
NAMESPACE_WIDE_KINDS = frozenset({"PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication", "Sidecar",
                                  "EnvoyFilter", "Telemetry", "WasmPlugin"})
# a cluster's journal keys a kind by its API (mesh/kube: the Gateway API's Gateway is KubernetesGateway), findings
# by the kind the object's YAML says
KIND_AS_FINDINGS_NAME_IT = {"KubernetesGateway": "Gateway"}
OP_WORDS = {"create": "created", "update": "changed", "delete": "deleted"}


def _host_parts(host: str) -> tuple[str, str | None]:
    parts = host.split(".")
    return parts[0], (parts[1] if len(parts) > 1 and parts[1] != "svc" else None)


def _scope(finding: dict[str, Any]) -> dict[str, Any]:
    """What the finding is about: object refs, hosts (short names with namespace), workloads, namespaces."""
    refs: set[tuple[str, str, str]] = set()
    hosts: set[tuple[str, str | None]] = set()
    workloads: set[str] = set()
    namespaces: set[str] = set()
    for r in [finding.get("resource"), *(finding.get("related") or [])]:
        if not isinstance(r, dict) or not r.get("kind"):
            continue
        refs.add((r["kind"], r.get("namespace") or "", r.get("name") or ""))
        if r.get("namespace"):
            namespaces.add(r["namespace"])
        if r["kind"] == "Service":
            hosts.add((r.get("name") or "", r.get("namespace")))
    ev = finding.get("evidence") or {}
    key = str(ev.get("edge_key") or "")
    if key and "." in key and ":" not in key:
        name, ns = _host_parts(key)
        hosts.add((name, ns))
        if ns:
            namespaces.add(ns)
    for e in ev.get("edges") or []:
        if isinstance(e, dict):
            for k in ("source", "destination_workload", "workload"):
                if e.get(k):
                    workloads.add(str(e[k]))
            if e.get("source_namespace"):
                namespaces.add(str(e["source_namespace"]))
    return {"refs": refs, "hosts": hosts, "workloads": workloads, "namespaces": namespaces}


def _strings_at(value: Any, keys: tuple[str, ...], under: bool = False) -> list[str]:
    """Every string under a key in `keys` (at any depth): hosts a spec names."""
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_strings_at(v, keys, under=k in keys))
    elif isinstance(value, list):
        for v in value:
            out.extend(_strings_at(v, keys, under))
    elif under and isinstance(value, str):
        out.append(value)
    return out


def _selectors(spec: Any) -> list[dict[str, str]]:
    out = []
    if isinstance(spec, dict):
        for key in ("selector", "workloadSelector"):
            sel = spec.get(key)
            if isinstance(sel, dict):
                labels = sel.get("matchLabels") if isinstance(sel.get("matchLabels"), dict) else sel.get("labels")
                if not isinstance(labels, dict):
                    labels = {k: v for k, v in sel.items() if isinstance(v, str)}
                if labels:
                    out.append({str(k): str(v) for k, v in labels.items()})
    return out


def _names_host(pattern: str, ns: str | None, host: tuple[str, str | None]) -> bool:
    name, hns = host
    if pattern == "*" or not name:
        return False
    if pattern.startswith("*."):
        return f"{name}.{hns}.svc.cluster.local".endswith(pattern[1:]) if hns else False
    pname, pns = _host_parts(pattern)
    return pname == name and (pns or ns) == hns if hns else pname == name


def _exported_to(spec: Any, ns: str) -> set[str] | None:
    """The namespaces an object's `exportTo` makes it visible in; None when it is visible everywhere."""
    exp = spec.get("exportTo") if isinstance(spec, dict) else None
    if not isinstance(exp, list) or not exp or any(e == "*" for e in exp):
        return None
    return {ns if e == "." else str(e) for e in exp if isinstance(e, str) and e != "~"}


def _relation(change: dict[str, Any], scope: dict[str, Any],
              root_namespace: str = ROOT_NAMESPACE) -> tuple[int, int, str]:
    """(tier, specificity inside the tier, why) of one change against one finding."""
    kind, ns, name = change.get("kind") or "", change.get("namespace") or "", change.get("name") or ""
    if (kind, ns, name) in scope["refs"] or (KIND_AS_FINDINGS_NAME_IT.get(kind), ns, name) in scope["refs"]:
        return 4, 2, "the finding's own object"
    if kind == "Service" and (name, ns or None) in scope["hosts"]:
        return 4, 1, "the finding's service"
    sides = [s for s in (change.get("after"), change.get("before")) if isinstance(s, dict)]
    hidden = ""
    for side in sides:
        spec = side.get("spec")
        for pattern in _strings_at(spec, HOST_KEYS):
            if any(_names_host(pattern, ns or None, h) for h in scope["hosts"]):
                seen_in = _exported_to(spec, ns)
                if seen_in is not None and scope["namespaces"] and not seen_in & scope["namespaces"]:
                    hidden = f"names host {pattern} but is exported only to {', '.join(sorted(seen_in)) or 'none'}"
                    continue
                return 3, 2, f"names host {pattern}"
    for side in sides:
        labels = [*_selectors(side.get("spec"))]
        if kind == "WorkloadBehavior":
            if name in scope["workloads"]:
                return 3, 2, "a workload on the hurt edge"
            labels.append(side.get("labels") or {})
        for sel in labels:
            app = sel.get("app") or sel.get("app.kubernetes.io/name")
            if app and any(app == h[0] and (not h[1] or not ns or h[1] == ns) for h in scope["hosts"]):
                return 3, 1, f"selects app={app}"
            if app and any(w == app or w.startswith(app + "-") for w in scope["workloads"]):
                return 3, 1, f"selects app={app}"
    if kind in NAMESPACE_WIDE_KINDS and sides and not any(_selectors(s.get("spec")) for s in sides):
        if ns == root_namespace:
            return 3, 0, f"mesh-wide: no selector in the root namespace {ns}"
        if ns and ns in scope["namespaces"]:
            return 3, 0, f"namespace-wide: no selector, every workload of {ns}"
    if ns and ns in scope["namespaces"]:
        return 2, 0, f"same namespace {ns}" + (f" ({hidden})" if hidden else "")
    return 1, 0, hidden or "elsewhere"


def _net_nil(changes: list[dict[str, Any]], seen_since: float | None = None) -> dict[int, str]:
    """Changes whose object was back as it was when the window's last change was made: id(change) -> why.

    Per object, the content before its first change and after its last one are
    compared (a change and its revert); a delete and a create of the same kind
    and namespace with the same content are a rename. Too-large entries carry
    no content and are never judged nil. Nor is a sequence that began after the
    finding was first seen (`seen_since`): the state it returned to is one the
    finding already lived in, so a fault cleared and applied again is the cause
    of the episode it reopened, not nothing."""
    by_obj: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for ch in changes:
        by_obj.setdefault((ch.get("kind") or "", ch.get("namespace") or "", ch.get("name") or ""), []).append(ch)
    out: dict[int, str] = {}
    deleted: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    created: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for (kind, ns, _), chs in by_obj.items():
        chs.sort(key=lambda c: (float(c.get("time") or 0.0), c.get("seq") or 0))
        if any(c.get("too_large") for c in chs):
            continue
        if seen_since is not None and float(chs[0].get("time") or 0.0) >= seen_since:
            continue
        first, last = chs[0].get("before"), chs[-1].get("after")
        if first == last and len(chs) > 1:
            for c in chs:
                out[id(c)] = "reverted before the onset: the object is as it was"
        elif first is not None and last is None:
            deleted.setdefault((kind, ns, _key(first)), []).extend(chs)
        elif first is None and last is not None:
            created.setdefault((kind, ns, _key(last)), []).extend(chs)
    for key, gone in deleted.items():
        if key in created:
            for c in gone + created[key]:
                out[id(c)] = "renamed with the same spec: nothing the mesh does changed"
    return out


def _key(content: dict[str, Any]) -> str:
    return json.dumps(content.get("spec"), sort_keys=True, default=str)


def onset_of(finding: dict[str, Any]) -> float | None:
    """When the finding's current episode began: a finding that resolved and came back is judged against the
    changes before its return, not before its first appearance an hour ago."""
    return finding.get("opened_at") or finding.get("first_seen")


def rank(finding: dict[str, Any], changes: list[dict[str, Any]], onset: float | None = None,
         lookback_s: float = LOOKBACK_S, top: int = TOP,
         root_namespace: str = ROOT_NAMESPACE) -> list[dict[str, Any]]:
    """The changes before the finding's onset, most likely cause first, each with tier, why and a sentence."""
    onset = onset if onset is not None else onset_of(finding)
    if onset is None:
        return []
    scope = _scope(finding)
    window = []
    for ch in changes:
        if not is_change(ch):
            continue  # a gap is no change; the journal's first listing is what was there, not a change
        t = float(ch.get("time") or 0.0)
        if onset - lookback_s <= t <= onset + AFTER_ONSET_S:
            window.append(ch)
    seen = finding.get("first_seen")
    nil = _net_nil(window, float(seen) if isinstance(seen, (int, float)) and seen < onset else None)
    window = _net_per_object(window, nil)
    scored = []
    for ch in window:
        t = float(ch.get("time") or 0.0)
        tier, spec, why = _relation(ch, scope, root_namespace)
        if id(ch) in nil:
            tier, spec, why = 0, tier, f"{nil[id(ch)]} ({why})"
        scored.append((tier, spec, t, ch, why))
    scored.sort(key=lambda s: (-s[0], -s[1], -s[2]))
    out = []
    for tier, _, t, ch, why in scored[:top]:
        out.append({"seq": ch.get("seq"), "ref": _ref(ch), "time": t, "op": ch.get("op"), "who": ch.get("who", ""),
                    "tier": tier, "relation": TIERS[tier], "why": why, "summary": summary(ch),
                    "likely_cause": tier >= 3, "sentence": sentence(ch, onset)})
        if ch.get("steps"):  # several changes of one object, said as one: the net change, the rollback to its start
            out[-1].update(steps=ch["steps"], first_seq=ch.get("first_seq"), first_time=ch.get("first_time"))
            out[-1]["rollback_yaml"] = rollback_yaml(ch)
    return out


def _net_per_object(window: list[dict[str, Any]], nil: dict[int, str]) -> list[dict[str, Any]]:
    """One entry per object for an object changed several times in the window (an apply/revert storm, a fix
    on top of a fix): the latest change with the net diff from before the first to after the last, and the
    number of steps. Each step alone is not the cause nor its undo: rolling back only the last step of
    A -> B (the fault) -> C (a label) would restore B, the fault; and a storm's steps would fill the list and
    hide every other candidate. Objects back where they began (nil) keep their steps, judged no net change.

    The net change starts after the object's last return to where it began: the steps up to it changed nothing
    (a fault applied, cleared, then applied again by someone else is the last application, by its author alone;
    a storm flipping between the old state and a new one is its last flip)."""
    by_obj: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for ch in window:
        by_obj.setdefault((ch.get("kind") or "", ch.get("namespace") or "", ch.get("name") or ""), []).append(ch)
    out = []
    for chs in by_obj.values():
        if len(chs) == 1 or any(id(c) in nil or c.get("too_large") for c in chs):
            out.extend(chs)
            continue
        chs = sorted(chs, key=lambda c: (float(c.get("time") or 0.0), c.get("seq") or 0))
        began = chs[0].get("before")
        back = max((i for i, c in enumerate(chs[:-1]) if c.get("after") == began), default=None)
        if back is not None:
            chs = chs[back + 1:]
            if len(chs) == 1:
                out.append(chs[0])
                continue
        first, last = chs[0], chs[-1]
        before, after = first.get("before"), last.get("after")
        net = dict(last)
        net.update(before=before, diff=field_diff(before, after), steps=len(chs), first_seq=first.get("seq"),
                   first_time=first.get("time"),
                   op="create" if before is None else "delete" if after is None else "update")
        net["who"] = ", ".join(dict.fromkeys(str(c.get("who") or "") for c in chs if c.get("who")))
        out.append(net)
    return out


def _ref(ch: dict[str, Any]) -> str:
    return f"{ch.get('kind')} {ch['namespace']}/{ch.get('name')}" if ch.get("namespace") else \
        f"{ch.get('kind')} {ch.get('name')}"


def sentence(ch: dict[str, Any], onset: float) -> str:
    """"started 40 s after DestinationRule bookinfo/reviews was changed (spec...: A -> B, by who)"."""
    gap = onset - float(ch.get("time") or 0.0)
    when = f"{gap:.0f} s after" if gap >= 0 else f"{-gap:.0f} s before"
    by = f", by {ch['who']}" if ch.get("who") else ""
    steps = f" in {ch['steps']} changes since {onset - float(ch.get('first_time') or 0.0):.0f} s before" \
        if ch.get("steps") else ""
    return f"started {when} {_ref(ch)} was {OP_WORDS.get(ch.get('op', ''), ch.get('op', ''))}{steps} ({summary(ch)}{by})"


def rollback_yaml(ch: dict[str, Any]) -> str | None:
    """The inverse change as YAML: the previous object to apply, or (for a create) the object to delete."""
    if ch.get("too_large") or ch.get("kind") == "WorkloadBehavior":
        return None
    meta: dict[str, Any] = {"name": ch.get("name")}
    if ch.get("namespace"):
        meta["namespace"] = ch["namespace"]
    doc: dict[str, Any] = {"apiVersion": ch.get("api_version") or "v1", "kind": ch.get("kind"), "metadata": meta}
    if ch.get("op") == "create":
        return "# delete the object this change created (meshscope delete -f / kubectl delete -f)\n" + \
            yaml.safe_dump(doc, sort_keys=False)
    before = ch.get("before")
    if not isinstance(before, dict):
        return None
    if before.get("labels"):
        meta["labels"] = before["labels"]
    if before.get("annotations"):
        meta["annotations"] = before["annotations"]
    doc["spec"] = before.get("spec") or {}
    return "# restore the object as it was before the change (meshscope apply -f / kubectl apply -f)\n" + \
        yaml.safe_dump(doc, sort_keys=False)


def annotate(findings: list[dict[str, Any]], changes: list[dict[str, Any]]) -> None:
    """Add `changes` (ranked), `change_sentence` and, when the top change is the likely cause, `rollback_yaml`."""
    if not changes:
        return
    by_seq = {c.get("seq"): c for c in changes}
    for f in findings:
        if f.get("category") == "config" and not (f.get("evidence") or {}):
            continue  # config findings are about the config as it is, not about an onset
        ranked = rank(f, changes)
        if not ranked:
            continue
        f["changes"] = ranked
        top = ranked[0]
        f["change_sentence"] = top["sentence"]
        if top["likely_cause"]:
            rb = top["rollback_yaml"] if "rollback_yaml" in top else rollback_yaml(by_seq.get(top["seq"], {}))
            if rb:
                f["rollback_yaml"] = rb


ROLLBACK_MARK = "Or roll back the change that preceded it"


def annotate_findings(findings: list[Any], journal: Any, now: float | None = None) -> int:
    """For the live loop (before alerts): each open runtime/SLO finding carries the changes before its onset.

    Sets `evidence.changed_before` (the sentence), `evidence.config_changes`
    (the ranked list, a table in reports) and, when the top change is the
    likely cause, appends its rollback YAML to the remediation once. Returns
    how many findings got changes. One journal query covers every finding.
    """
    live = [f for f in findings if getattr(f, "status", "open") == "open" and f.first_seen
            and getattr(f, "category", "") != "config"]
    if not live or journal is None:
        return 0
    onsets = [getattr(f, "opened_at", None) or f.first_seen for f in live]
    changes = journal.query(since=min(onsets) - LOOKBACK_S, until=max(onsets) + AFTER_ONSET_S, limit=5000)
    if not changes:
        return 0
    by_seq = {c.get("seq"): c for c in changes}
    done = 0
    for f, onset in zip(live, onsets):
        ranked = rank(f.to_dict(), changes, onset=onset)
        if not ranked:
            continue
        done += 1
        top = ranked[0]
        f.evidence["changed_before"] = top["sentence"]
        f.evidence["config_changes"] = [{"change": r["ref"], "op": r["op"], "what": r["summary"], "by": r["who"],
                                         "relation": r["relation"], "seconds_before": round(onset - r["time"])}
                                        for r in ranked]
        rb = (top["rollback_yaml"] if "rollback_yaml" in top else rollback_yaml(by_seq.get(top["seq"], {}))) \
            if top["likely_cause"] else None
        if rb and ROLLBACK_MARK not in (f.remediation or ""):
            f.remediation = (f.remediation + "\n\n" if f.remediation else "") + \
                f"{ROLLBACK_MARK} ({top['ref']}):\n{rb}"
    return done
