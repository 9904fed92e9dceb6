"""Alert webhooks with a durable outbox: config, grouping, sinks and the dispatcher."""
from diagnose.alerts.config import (
    AlertsConfig,
    ConfigProblem,
    LoadedAlertsConfig,
    ReceiverConfig,
    load_alerts_config,
    parse_alerts_config,
    parse_duration,
)
from diagnose.alerts.dispatcher import AlertDispatcher
from diagnose.alerts.grouping import Grouper
from diagnose.alerts.model import Alert, Notification, alert_from_finding
from diagnose.alerts.outbox import Outbox
from diagnose.alerts.signing import sign, verify

__all__ = [
    "Alert",
    "AlertDispatcher",
    "AlertsConfig",
    "ConfigProblem",
    "Grouper",
    "LoadedAlertsConfig",
    "Notification",
    "Outbox",
    "ReceiverConfig",
    "alert_from_finding",
    "load_alerts_config",
    "parse_alerts_config",
    "parse_duration",
    "sign",
    "verify",
]
