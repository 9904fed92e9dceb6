"""Alert receivers declared in YAML, validated with file:line:field errors.

A bad receiver is reported and skipped; the others still load, so one typo
does not silence every on-call channel.

    external_url: http://127.0.0.1:8050        # links in notifications
    receivers:
      - name: oncall
        url: http://127.0.0.1:9000/hook
        format: webhook                        # webhook | slack | alertmanager | amwebhook
        secret: whsec_...                      # or secret_env: NAME (webhook, amwebhook)
        categories: [slo, runtime]             # empty = all
        severities: [error, warning]           # empty = all
        group_by: [alertname, namespace]       # ["..."] = one group per alert
        group_wait: 30s
        group_interval: 5m
        repeat_interval: 4h
        send_resolved: true
        timeout: 10s
        max_retry_age: 24h                     # give up on a notification after this long
        headers: {Authorization: Bearer ...}
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FORMATS = ("webhook", "slack", "alertmanager", "amwebhook")
CATEGORIES = ("route", "mtls", "security", "slo", "runtime")
SEVERITIES = ("error", "warning", "info")

# Alertmanager's route defaults (dispatch/route.go), except for the v2 API sink:
# Alertmanager groups by itself, so we hand it every change at once and re-post
# firing alerts well before its resolve_timeout (5 m) would end them.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "*": {"group_by": ["alertname"], "group_wait": 30.0, "group_interval": 300.0, "repeat_interval": 14400.0},
    "alertmanager": {"group_by": ["..."], "group_wait": 0.0, "group_interval": 10.0, "repeat_interval": 60.0},
}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


@dataclass
class ReceiverConfig:
    """One destination for notifications and the rules for what and when it hears."""

    name: str
    url: str
    format: str = "webhook"
    secret: str | None = None
    categories: list[str] = field(default_factory=list)
    severities: list[str] = field(default_factory=list)
    group_by: list[str] = field(default_factory=lambda: ["alertname"])
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 14400.0
    send_resolved: bool = True
    timeout: float = 10.0
    max_retry_age: float = 86400.0
    headers: dict[str, str] = field(default_factory=dict)

    def accepts(self, category: str, severity: str) -> bool:
        return (not self.categories or category in self.categories) and (
            not self.severities or severity in self.severities
        )

    @classmethod
    def for_format(cls, name: str, url: str, format: str = "webhook", **kw: Any) -> "ReceiverConfig":
        """A receiver with the defaults of its format, overridden by `kw`."""
        d = dict(_DEFAULTS["*"])
        d.update(_DEFAULTS.get(format, {}))
        d.update(kw)
        return cls(name=name, url=url, format=format, **d)


@dataclass
class AlertsConfig:
    receivers: list[ReceiverConfig] = field(default_factory=list)
    external_url: str = "http://127.0.0.1:8050"


@dataclass
class ConfigProblem:
    """A problem in the alerts file, located as precisely as the YAML allows."""

    file: str
    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field + ': ' if self.field else ''}{self.message}"


@dataclass
class LoadedAlertsConfig:
    config: AlertsConfig
    problems: list[ConfigProblem]


def parse_duration(value: Any) -> float:
    """`30s`, `5m`, `4h`, `1d`, `250ms` or a bare number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"negative duration: {value!r}")
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 4h)")
    return float(m.group(1)) * _UNIT[m.group(2)]


def _line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 0


def _children(node: yaml.Node) -> dict[str, yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
    return {}


_LIST_FIELDS = {"categories": CATEGORIES, "severities": SEVERITIES, "group_by": None}
_DURATION_FIELDS = ("group_wait", "group_interval", "repeat_interval", "timeout", "max_retry_age")
_KNOWN = {"name", "url", "format", "secret", "secret_env", "send_resolved", "headers", *_LIST_FIELDS, *_DURATION_FIELDS}


def _receiver(raw: Any, node: yaml.Node, index: int, file: str, problems: list[ConfigProblem]) -> ReceiverConfig | None:
    at = f"receivers[{index}]"
    kids = _children(node)

    def bad(key: str | None, msg: str) -> None:
        problems.append(ConfigProblem(file, _line(kids.get(key) if key else node), f"{at}.{key}" if key else at, msg))

    if not isinstance(raw, dict):
        bad(None, "a receiver must be a mapping")
        return None
    ok = True
    for key in raw:
        if key not in _KNOWN:
            bad(str(key), f"unknown field (known: {', '.join(sorted(_KNOWN))})")
    for key in ("name", "url"):
        if not isinstance(raw.get(key), str) or not raw.get(key):
            bad(key, "required string")
            ok = False
    fmt = raw.get("format", "webhook")
    if fmt not in FORMATS:
        bad("format", f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
        ok = False
    url = raw.get("url")
    if isinstance(url, str) and not url.startswith(("http://", "https://")):
        bad("url", f"must be an http:// or https:// URL, got {url!r}")
        ok = False
    kw: dict[str, Any] = {}
    for key in _DURATION_FIELDS:
        if key in raw:
            try:
                kw[key] = parse_duration(raw[key])
            except ValueError as exc:
                bad(key, str(exc))
                ok = False
    for key, allowed in _LIST_FIELDS.items():
        if key not in raw:
            continue
        val = raw[key]
        if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
            bad(key, "must be a list of strings")
            ok = False
            continue
        wrong = [v for v in val if allowed and v not in allowed]
        if wrong:
            bad(key, f"unknown value(s) {', '.join(wrong)} (one of {', '.join(allowed)})")
            ok = False
        kw[key] = list(val)
    if "send_resolved" in raw:
        if not isinstance(raw["send_resolved"], bool):
            bad("send_resolved", "must be true or false")
            ok = False
        kw["send_resolved"] = raw["send_resolved"]
    headers = raw.get("headers", {})
    if not isinstance(headers, dict):
        bad("headers", "must be a mapping of header name to value")
        ok = False
    else:
        kw["headers"] = {str(k): str(v) for k, v in headers.items()}
    secret = raw.get("secret")
    if "secret_env" in raw:
        secret = os.environ.get(str(raw["secret_env"]))
        if not secret:
            bad("secret_env", f"environment variable {raw['secret_env']} is not set")
            ok = False
    if secret is not None:
        from diagnose.alerts.signing import decode_secret

        try:
            decode_secret(str(secret))
        except ValueError as exc:
            bad("secret" if "secret" in raw else "secret_env", str(exc))
            ok = False
        kw["secret"] = str(secret)
    if not ok:
        return None
    return ReceiverConfig.for_format(raw["name"], raw["url"], fmt, **kw)


def parse_alerts_config(text: str, file: str = "<alerts>") -> LoadedAlertsConfig:
    """Parse the alerts YAML text; every problem is returned, valid receivers are kept."""
    problems: list[ConfigProblem] = []
    # the bounded reader first (size, nesting depth, alias expansion: mesh.config.limits): a file nested 5,000
    # deep made yaml.compose raise RecursionError, a traceback instead of a problem naming the line
    from mesh.config import limits
    from mesh.config.yamlnodes import parse_documents

    too_big = limits.size_problem(len(text.encode("utf-8", "replace")), "alerts file")
    _, errors = ([], [limits.InputLimitError(too_big)]) if too_big else parse_documents(text)
    if errors:
        return LoadedAlertsConfig(AlertsConfig(), [ConfigProblem(file, getattr(e, "line", 0), None, f"invalid YAML: {e}")
                                                   for e in errors])
    try:
        node = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(ConfigProblem(file, mark.line + 1 if mark else 0, None, f"invalid YAML: {getattr(exc, 'problem', exc)}"))
        return LoadedAlertsConfig(AlertsConfig(), problems)
    cfg = AlertsConfig()
    if raw is None:
        return LoadedAlertsConfig(cfg, problems)
    if not isinstance(raw, dict):
        problems.append(ConfigProblem(file, _line(node), None, "top level must be a mapping with `receivers:`"))
        return LoadedAlertsConfig(cfg, problems)
    top = _children(node)
    for key in raw:
        if key not in ("receivers", "external_url"):
            problems.append(ConfigProblem(file, _line(top.get(key)), str(key), "unknown field (known: external_url, receivers)"))
    if "external_url" in raw:
        cfg.external_url = str(raw["external_url"]).rstrip("/")
    receivers = raw.get("receivers") or []
    if not isinstance(receivers, list):
        problems.append(ConfigProblem(file, _line(top.get("receivers")), "receivers", "must be a list"))
        return LoadedAlertsConfig(cfg, problems)
    nodes = top["receivers"].value if "receivers" in top and isinstance(top["receivers"], yaml.SequenceNode) else []
    seen: set[str] = set()
    for i, item in enumerate(receivers):
        rnode = nodes[i] if i < len(nodes) else top.get("receivers")
        rec = _receiver(item, rnode, i, file, problems)
        if rec is None:
            continue
        if rec.name in seen:
            problems.append(ConfigProblem(file, _line(rnode), f"receivers[{i}].name", f"duplicate receiver name {rec.name!r}"))
            continue
        seen.add(rec.name)
        cfg.receivers.append(rec)
    return LoadedAlertsConfig(cfg, problems)


def load_alerts_config(path: str | Path) -> LoadedAlertsConfig:
    """Read and parse an alerts file; an unreadable file is a problem, not an exception."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return LoadedAlertsConfig(AlertsConfig(), [ConfigProblem(str(path), 0, None, f"cannot read: {exc}")])
    return parse_alerts_config(text, str(path))
