"""meshscope's own alerting metrics, on a registry the composition root can serve at `/metrics`.

A private registry, like the collector's, so several dispatchers in one process
(tests) do not collide on prometheus_client's global one. Stuck or failing
receivers show up here before anyone misses a page.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

REGISTRY = CollectorRegistry(auto_describe=True)

QUEUED = Counter("meshscope_alert_notifications_queued_total", "Notifications persisted in the outbox.",
                 ["receiver"], registry=REGISTRY)
ATTEMPTS = Counter("meshscope_alert_delivery_attempts_total",
                   "Delivery attempts by outcome (delivered, retry, failed, expired).",
                   ["receiver", "outcome"], registry=REGISTRY)
PENDING = Gauge("meshscope_alert_outbox_pending", "Notifications waiting in the outbox (not yet delivered).",
                ["receiver"], registry=REGISTRY)
