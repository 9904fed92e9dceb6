"""Generic JSON webhook, signed Standard-Webhooks style (webhook-id / -timestamp / -signature).

The body is the same on every retry (only the timestamp and signature change),
so a receiver can dedupe on `webhook-id` or on the body's `id`.
"""
from __future__ import annotations

import json

from diagnose.alerts.config import ReceiverConfig
from diagnose.alerts.model import HttpRequest, Notification, rfc3339
from diagnose.alerts.signing import sign

VERSION = "meshscope.alerts/v1"


def payload(n: Notification) -> dict:
    return {
        "version": VERSION,
        "id": n.id,
        "receiver": n.receiver,
        "status": n.status,
        "groupKey": n.group_key,
        "groupLabels": n.group_labels,
        "createdAt": rfc3339(n.created_at),
        "alerts": [
            {
                "status": a.status,
                "fingerprint": a.fingerprint,
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": rfc3339(a.starts_at),
                "endsAt": rfc3339(a.ends_at) if a.ends_at is not None else None,
                "finding": a.finding,
            }
            for a in n.alerts
        ],
    }


def render(n: Notification, receiver: ReceiverConfig, now: float, external_url: str = "") -> HttpRequest:
    body = json.dumps(payload(n), sort_keys=True, default=str).encode()
    ts = int(now)
    headers = {"Content-Type": "application/json", "webhook-id": n.id, "webhook-timestamp": str(ts)}
    if receiver.secret:
        headers["webhook-signature"] = sign(receiver.secret, n.id, ts, body)
    headers.update(receiver.headers)
    return HttpRequest(receiver.url, body, headers)
