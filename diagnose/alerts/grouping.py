"""Alertmanager-like grouping: group_wait, group_interval, repeat_interval, resolved notices.

Pure state and time arithmetic, no I/O, so it is tested with explicit clocks
and persisted as a plain dict (a restart resumes mid-wait instead of forgetting
alerts it had not yet announced).

Per receiver, alerts are grouped by the values of `group_by` labels
(`["..."]` = every alert its own group). A new group is announced `group_wait`
after it appears (to batch a burst); after that it is looked at every
`group_interval`: it is sent again when its set of firing/resolved alerts
changed since the last send, or when `repeat_interval` passed with alerts still
firing. Resolved alerts are sent once (if `send_resolved`) and then forgotten;
an alert that resolves before it was ever announced is dropped silently.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from diagnose.alerts.config import ReceiverConfig
from diagnose.alerts.model import FIRING, RESOLVED, Alert, Notification, alert_from_finding
from diagnose.findings import Finding
from diagnose.terminal_text import terminal_safe


def incident_alerts(findings: list[Finding], now: float) -> list[Alert]:
    """One alert per open incident (`diagnose.incidents`), not one per finding: headed by its root cause, with
    the symptoms and total impact in the annotations, so a receiver is told once about one problem.

    The alert's identity is the root finding's fingerprint (a single-finding incident alerts exactly as its
    finding did); `annotations.incident` names the incident, `annotations.members` changes when symptoms join
    or leave, which makes the group send an update.
    """
    from diagnose.incidents import group

    out = []
    for inc in group([f for f in findings if f.status != "resolved"]):
        a = alert_from_finding(inc.root, now)
        a.starts_at = inc.first_seen or a.starts_at
        a.annotations["incident"] = inc.id
        others = inc.members[1:]
        a.annotations["members"] = ",".join(sorted(f.fingerprint for f in inc.members))
        if others:
            a.annotations["symptoms"] = "; ".join(f"{inc.roles.get(f.fingerprint)} {f.code}: {terminal_safe(f.message)[:160]}"
                                                  for f in others[:8]) + (f"; and {len(others) - 8} more"
                                                                          if len(others) > 8 else "")
            imp = inc.impact
            a.annotations["incident_impact"] = (f"{imp['rps']} req/s hurt on {len(imp['edges'])} edge(s); services "
                                                f"{', '.join(imp['services']) or '-'}; SLOs {', '.join(imp['slos']) or '-'}")
        a.finding = {**a.finding, "incident": inc.to_dict(full=False)}
        out.append(a)
    return out


def group_labels(alert: Alert, group_by: list[str]) -> dict[str, str]:
    if "..." in group_by:
        return dict(alert.labels)
    return {k: alert.labels.get(k, "") for k in group_by}


def group_key(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


@dataclass
class Group:
    receiver: str
    key: str
    labels: dict[str, str]
    created_at: float
    next_flush: float
    alerts: dict[str, Alert] = field(default_factory=dict)  # finding fingerprint -> alert
    last_sent: dict[str, str] = field(default_factory=dict)  # fingerprint -> status as last sent
    last_sent_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "receiver": self.receiver, "key": self.key, "labels": self.labels,
            "created_at": self.created_at, "next_flush": self.next_flush,
            "alerts": {fp: a.to_dict() for fp, a in self.alerts.items()},
            "last_sent": self.last_sent, "last_sent_at": self.last_sent_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Group":
        g = cls(d["receiver"], d["key"], dict(d["labels"]), d["created_at"], d["next_flush"])
        g.alerts = {fp: Alert.from_dict(a) for fp, a in d["alerts"].items()}
        g.last_sent = dict(d["last_sent"])
        g.last_sent_at = d["last_sent_at"]
        return g


def fp_sent(g: "Group", fingerprint: str) -> bool:
    return g.last_sent.get(fingerprint) == FIRING


class Grouper:
    """Tracks every receiver's groups; `observe` feeds the current alerts, `flush` says what to send."""

    def __init__(self, receivers: list[ReceiverConfig]):
        self.receivers = {r.name: r for r in receivers}
        self.groups: dict[tuple[str, str], Group] = {}

    def observe(self, alerts: list[Alert], now: float) -> None:
        """`alerts` is everything open right now; anything firing and absent has recovered."""
        current: set[tuple[str, str, str]] = set()
        for rec in self.receivers.values():
            for a in alerts:
                if not rec.accepts(a.labels.get("category", ""), a.labels.get("severity", "")):
                    continue
                labels = group_labels(a, rec.group_by)
                key = group_key(labels)
                g = self.groups.get((rec.name, key))
                if g is None:
                    g = Group(rec.name, key, labels, now, now + rec.group_wait)
                    self.groups[(rec.name, key)] = g
                current.add((rec.name, key, a.fingerprint))
                old = g.alerts.get(a.fingerprint)
                if old is None or old.status == RESOLVED:
                    g.alerts[a.fingerprint] = Alert(a.fingerprint, dict(a.labels), dict(a.annotations), FIRING, a.starts_at, None, a.finding)
                else:  # same problem, fresher words and evidence; keep when it started
                    if old.annotations.get("members") != a.annotations.get("members") and fp_sent(g, a.fingerprint):
                        g.last_sent.pop(a.fingerprint, None)  # the incident gained or lost symptoms: send an update
                    old.labels, old.annotations, old.finding = dict(a.labels), dict(a.annotations), a.finding
        for (rname, key), g in self.groups.items():
            for fp, a in g.alerts.items():
                if a.status == FIRING and (rname, key, fp) not in current:
                    a.status, a.ends_at = RESOLVED, now

    def next_due(self) -> float | None:
        return min((g.next_flush for g in self.groups.values()), default=None)

    def flush(self, now: float) -> list[Notification]:
        out: list[Notification] = []
        for gid in list(self.groups):
            g = self.groups[gid]
            if now < g.next_flush:
                continue
            rec = self.receivers.get(g.receiver)
            if rec is None:  # receiver removed from config: forget its groups
                del self.groups[gid]
                continue
            n = self._flush_group(g, rec, now)
            if n is not None:
                out.append(n)
            g.next_flush = now + rec.group_interval
            if not g.alerts:
                del self.groups[gid]
        return out

    def _flush_group(self, g: Group, rec: ReceiverConfig, now: float) -> Notification | None:
        # an alert that resolved before it was ever announced is nobody's news
        for fp in [fp for fp, a in g.alerts.items() if a.status == RESOLVED and g.last_sent.get(fp) != FIRING]:
            del g.alerts[fp]
        firing = {fp for fp, a in g.alerts.items() if a.status == FIRING}
        state = {fp: a.status for fp, a in g.alerts.items()}
        sent_firing = {fp for fp, s in g.last_sent.items() if s == FIRING}
        # without resolved notices, only a newly firing alert is news (as in Alertmanager)
        changed = state != g.last_sent if rec.send_resolved else not firing <= sent_firing
        repeat = bool(firing) and g.last_sent_at is not None and now - g.last_sent_at >= rec.repeat_interval
        n = None
        if (changed and (firing or rec.send_resolved)) or repeat:
            shown = [a for a in g.alerts.values() if a.status == FIRING or rec.send_resolved]
            shown.sort(key=lambda a: (a.status != FIRING, a.starts_at, a.fingerprint))
            n = Notification(
                id="msg_" + uuid.uuid4().hex,
                receiver=rec.name,
                group_key=g.key,
                group_labels=dict(g.labels),
                alerts=[Alert.from_dict(a.to_dict()) for a in shown],
                created_at=now,
            )
            g.last_sent_at = now
        if n is not None or not rec.send_resolved:
            g.last_sent = {fp: s for fp, s in state.items() if s == FIRING}
            for fp in [fp for fp, a in g.alerts.items() if a.status == RESOLVED]:
                del g.alerts[fp]
        return n

    def to_dict(self) -> dict[str, Any]:
        return {"groups": [g.to_dict() for g in self.groups.values()]}

    def load(self, d: dict[str, Any] | None) -> None:
        self.groups = {}
        for gd in (d or {}).get("groups", []):
            g = Group.from_dict(gd)
            if g.receiver in self.receivers:
                self.groups[(g.receiver, g.key)] = g
