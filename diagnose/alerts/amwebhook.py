"""Alertmanager's webhook payload (version 4), for receivers that already accept Alertmanager.

Field for field what Alertmanager 0.25 posts (see the reference capture): a firing
alert's endsAt is Go's zero time, `fingerprint` is 16 hex digits of the label set.
Alertmanager does not sign; we add Standard Webhooks headers only if a secret is set.
"""
from __future__ import annotations

import json

from diagnose.alerts.config import ReceiverConfig
from diagnose.alerts.model import FIRING, GO_ZERO_TIME, Alert, HttpRequest, Notification, finding_link, rfc3339
from diagnose.alerts.signing import sign


def _common(dicts: list[dict[str, str]]) -> dict[str, str]:
    if not dicts:
        return {}
    first = dicts[0]
    return {k: v for k, v in first.items() if all(d.get(k) == v for d in dicts[1:])}


def generator_url(a: Alert, external_url: str) -> str:
    return finding_link(external_url, a.fingerprint)


def payload(n: Notification, external_url: str = "") -> dict:
    alerts = [
        {
            "status": a.status,
            "labels": a.labels,
            "annotations": a.annotations,
            "startsAt": rfc3339(a.starts_at),
            "endsAt": GO_ZERO_TIME if a.status == FIRING or a.ends_at is None else rfc3339(a.ends_at),
            "generatorURL": generator_url(a, external_url),
            "fingerprint": a.label_fp,
        }
        for a in n.alerts
    ]
    group = ", ".join(f'{k}="{v}"' for k, v in sorted(n.group_labels.items()))
    return {
        "receiver": n.receiver,
        "status": n.status,
        "alerts": alerts,
        "groupLabels": n.group_labels,
        "commonLabels": _common([a.labels for a in n.alerts]),
        "commonAnnotations": _common([a.annotations for a in n.alerts]),
        "externalURL": external_url,
        "version": "4",
        "groupKey": "{}:{" + group + "}",
        "truncatedAlerts": 0,
    }


def render(n: Notification, receiver: ReceiverConfig, now: float, external_url: str = "") -> HttpRequest:
    body = json.dumps(payload(n, external_url)).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "meshscope"}
    if receiver.secret:
        ts = int(now)
        headers.update({"webhook-id": n.id, "webhook-timestamp": str(ts), "webhook-signature": sign(receiver.secret, n.id, ts, body)})
    headers.update(receiver.headers)
    return HttpRequest(receiver.url, body, headers)
