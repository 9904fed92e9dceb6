"""Prometheus Alertmanager's v2 API: `POST /api/v2/alerts` with a JSON array of postable alerts.

Alertmanager ends an alert by itself at `endsAt`; like Prometheus we post firing
alerts with `endsAt` a few repeat intervals ahead and keep re-posting them (the
receiver's repeat_interval), so a meshscope that dies lets its alerts expire
instead of leaving them stuck. A resolved alert is posted with its real endsAt.
"""
from __future__ import annotations

import json

from diagnose.alerts.amwebhook import generator_url
from diagnose.alerts.config import ReceiverConfig
from diagnose.alerts.model import FIRING, HttpRequest, Notification, rfc3339

API_PATH = "/api/v2/alerts"
MIN_TTL_S = 120.0


def endpoint(url: str) -> str:
    """Accept either the Alertmanager base URL or the full API URL."""
    url = url.rstrip("/")
    return url if url.endswith(API_PATH) else url + API_PATH


def payload(n: Notification, receiver: ReceiverConfig, now: float, external_url: str = "") -> list[dict]:
    ttl = max(4 * receiver.repeat_interval, MIN_TTL_S)
    out = []
    for a in n.alerts:
        ends = now + ttl if a.status == FIRING or a.ends_at is None else a.ends_at
        item = {
            "labels": a.labels,
            "annotations": a.annotations,
            "startsAt": rfc3339(a.starts_at),
            "endsAt": rfc3339(ends),
        }
        gen = generator_url(a, external_url)
        if gen:
            item["generatorURL"] = gen
        out.append(item)
    return out


def render(n: Notification, receiver: ReceiverConfig, now: float, external_url: str = "") -> HttpRequest:
    body = json.dumps(payload(n, receiver, now, external_url)).encode()
    headers = {"Content-Type": "application/json", **receiver.headers}
    return HttpRequest(endpoint(receiver.url), body, headers)
