"""Records that flow from findings to receivers: an alert per finding, a notification per group send.

Alert labels are derived from the finding so that Alertmanager-style grouping
(`group_by`) and Alertmanager itself can work on them; the finding's
fingerprint stays the identity, so re-evaluating the same problem never makes
a second alert.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from diagnose.findings import Finding
from diagnose.terminal_text import terminal_safe

FIRING = "firing"
RESOLVED = "resolved"
GO_ZERO_TIME = "0001-01-01T00:00:00Z"  # what Alertmanager puts in endsAt of a firing alert


def rfc3339(ts: float) -> str:
    """Seconds since the epoch -> `2026-11-21T00:29:33.123Z` (UTC, millisecond precision)."""
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def label_fingerprint(labels: dict[str, str]) -> str:
    """16 hex digits, stable per label set (the role Alertmanager's fingerprint plays)."""
    blob = "\xff".join(f"{k}\xfe{labels[k]}" for k in sorted(labels))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def finding_link(external_url: str, fingerprint: str) -> str:
    """The UI page of one finding (`/findings?fp=`), or "" without an external URL.

    The fingerprint is quoted whole: it holds '|', '#', '/' and spaces, and a raw '#' cut the
    link at the YAML path, a raw '|' ended a Slack link early.
    """
    return f"{external_url}/findings?fp={quote(fingerprint, safe='')}" if external_url else ""


def _short(value: Any, limit: int = 500) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Alert:
    """One finding as an alert: its identity, labels, annotations and state."""

    fingerprint: str  # the finding's fingerprint: the dedupe key
    labels: dict[str, str]
    annotations: dict[str, str]
    status: str = FIRING
    starts_at: float = 0.0
    ends_at: float | None = None
    finding: dict[str, Any] = field(default_factory=dict)

    @property
    def label_fp(self) -> str:
        return label_fingerprint(self.labels)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Alert":
        return cls(**d)


def alert_from_finding(f: Finding, now: float) -> Alert:
    """Labels say what and where (for grouping and routing); annotations say why and what to do."""
    r = f.resource
    labels = {"alertname": f.code, "code": f.code, "severity": f.severity, "category": f.category}
    if r is not None:
        labels["kind"] = r.kind
        labels["name"] = r.name
        if r.namespace:
            labels["namespace"] = r.namespace
    edge = (f.evidence or {}).get("edge_key")
    if edge:
        labels["edge"] = str(edge)
    annotations = {"summary": f.message, "fingerprint": f.fingerprint}
    if f.remediation:
        annotations["remediation"] = f.remediation
    if (f.evidence or {}).get("changed_before"):  # diagnose.changes: the likely causing config change
        annotations["changed_before"] = str(f.evidence["changed_before"])
    if f.impact:
        annotations["impact"] = _short(f.impact)
    if (f.evidence or {}).get("rollback_yaml"):  # a regressing canary (MS5010): what to apply, in the page itself
        annotations["rollback_yaml"] = str(f.evidence["rollback_yaml"])
    if r is not None and r.source:
        annotations["source"] = r.source
    if f.equivalents:
        annotations["equivalents"] = ", ".join(f.equivalents)
    return Alert(
        fingerprint=f.fingerprint,
        # names and messages quote config and requests; receivers print them in chat, mail and terminals, so a
        # newline or an ANSI escape in a name is shown as an escape, never a forged line (rollback YAML keeps its
        # lines; the fingerprint is an identifier receivers match on, like the alert's own, so it stays exact)
        labels={k: terminal_safe(v) for k, v in labels.items()},
        annotations={k: v if k == "fingerprint" else terminal_safe(v, keep_newlines=k == "rollback_yaml")
                     for k, v in annotations.items()},
        starts_at=f.opened_at or f.first_seen or now,  # the current episode's onset, as Alertmanager's startsAt
        finding=f.to_dict(),
    )


@dataclass
class Notification:
    """One message to one receiver about one group, persisted in the outbox before it is sent.

    `id` is reused on every retry (Standard Webhooks' idempotency key).
    """

    id: str
    receiver: str
    group_key: str
    group_labels: dict[str, str]
    alerts: list[Alert]
    created_at: float

    @property
    def status(self) -> str:
        return FIRING if any(a.status == FIRING for a in self.alerts) else RESOLVED

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "receiver": self.receiver,
            "group_key": self.group_key,
            "group_labels": self.group_labels,
            "alerts": [a.to_dict() for a in self.alerts],
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Notification":
        return cls(
            id=d["id"],
            receiver=d["receiver"],
            group_key=d["group_key"],
            group_labels=dict(d["group_labels"]),
            alerts=[Alert.from_dict(a) for a in d["alerts"]],
            created_at=float(d["created_at"]),
        )

    def content_key(self) -> str:
        """Same receiver, group and (alert, status) set = same content: used to drop duplicates."""
        parts = sorted(f"{a.fingerprint}={a.status}" for a in self.alerts)
        blob = json.dumps([self.receiver, self.group_key, parts])
        return hashlib.sha256(blob.encode()).hexdigest()[:32]


@dataclass
class HttpRequest:
    """What a sink wants sent; the dispatcher owns the transport."""

    url: str
    body: bytes
    headers: dict[str, str]
    method: str = "POST"
