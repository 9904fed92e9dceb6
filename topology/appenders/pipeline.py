"""The one place that orders appenders (and rejects unknown names)."""
from __future__ import annotations

from collections.abc import Sequence

from topology.appenders.ambient import AmbientAppender
from topology.appenders.base import Appender
from topology.appenders.config_badges import ConfigBadgesAppender
from topology.appenders.dead_node import DeadNodeAppender
from topology.appenders.error_rate import ErrorRateAppender
from topology.appenders.health import HealthAppender
from topology.appenders.idle_node import IdleNodeAppender
from topology.appenders.outsider import OutsiderAppender
from topology.appenders.response_flags import ResponseFlagsAppender
from topology.appenders.response_time import ResponseTimeAppender
from topology.appenders.security_policy import SecurityPolicyAppender
from topology.appenders.service_entry import ServiceEntryAppender
from topology.appenders.throughput import ThroughputAppender
from topology.appenders.traffic_generator import TrafficGeneratorAppender

# Order matters and is explained here, once:
# - serviceEntry first: it only marks service nodes, and deadNode must not prune a service entry;
# - deadNode next: it prunes nodes, so later appenders do less work; idleNode right after adds
#   the config-only nodes, so every later appender sees the final node set;
# - throughput, errorRate, responseTime, responseFlags, securityPolicy only decorate edges from
#   the rate frame and are independent of each other;
# - configBadges after them (its CB-trip hint reads the response flags of edges);
# - finalizers last, on the final graph: health (reads every edge's responses and idle flags),
#   ambient (folds waypoint return edges, so it must precede the root marks), then outsider
#   (namespace marks) and trafficGenerator (roots), which always run.
OPTIONAL: dict[str, type] = {
    "serviceEntry": ServiceEntryAppender,
    "deadNode": DeadNodeAppender,
    "idleNode": IdleNodeAppender,
    "throughput": ThroughputAppender,
    "errorRate": ErrorRateAppender,
    "responseTime": ResponseTimeAppender,
    "responseFlags": ResponseFlagsAppender,
    "securityPolicy": SecurityPolicyAppender,
    "configBadges": ConfigBadgesAppender,
    "health": HealthAppender,
    "ambient": AmbientAppender,
}
FINALIZERS: dict[str, type] = {"outsider": OutsiderAppender, "trafficGenerator": TrafficGeneratorAppender}


def build_pipeline(names: Sequence[str] | None = None, **options) -> list[Appender]:
    """Appenders in run order. `names=None`: all of them; `[]`: only the always-on finalizers.

    `options` are passed to the appender dataclasses that declare them as fields
    (e.g. `quantiles=(0.5, 0.95, 0.99)`, `mismatch_policies=...`); an option no
    selected appender accepts is an error, as is an unknown appender name.
    """
    chosen = list(OPTIONAL) if names is None else list(names)
    unknown = [n for n in chosen if n not in OPTIONAL and n not in FINALIZERS]
    if unknown:
        raise ValueError(f"unknown appender(s): {', '.join(unknown)}; known: {', '.join([*OPTIONAL, *FINALIZERS])}")
    ordered = [n for n in OPTIONAL if n in chosen] + list(FINALIZERS)
    used: set[str] = set()
    out: list[Appender] = []
    for name in ordered:
        cls = OPTIONAL.get(name) or FINALIZERS[name]
        fields = getattr(cls, "__dataclass_fields__", {})
        kwargs = {k: v for k, v in options.items() if k in fields and k not in ("name", "finalizer")}
        used |= set(kwargs)
        out.append(cls(**kwargs))
    extra = set(options) - used
    if extra:
        raise ValueError(f"option(s) {', '.join(sorted(extra))} not accepted by any selected appender")
    return out
