"""Slack incoming-webhook messages (Block Kit, with a plain `text` fallback).

Slack treats `<...>` as links and mentions, so every finding string is escaped
(&, <, >); section text is capped at 3000 characters and a message at 50 blocks.
"""
from __future__ import annotations

import json

from diagnose.alerts.config import ReceiverConfig
from diagnose.alerts.model import FIRING, Alert, HttpRequest, Notification, finding_link
from diagnose.terminal_text import terminal_safe

MAX_BLOCKS = 50
MAX_SECTION = 3000
_ICON = {"error": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}


def escape(text: str) -> str:
    """Slack's three entities, and control characters shown as escapes: a newline in a name is no new line."""
    return terminal_safe(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cap(text: str, limit: int = MAX_SECTION) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _alert_block(a: Alert, external_url: str) -> dict:
    sev = a.labels.get("severity", "")
    icon = ":white_check_mark:" if a.status != FIRING else _ICON.get(sev, ":warning:")
    where = "/".join(x for x in (a.labels.get("namespace"), a.labels.get("name")) if x)
    head = f"{icon} *{escape(a.labels.get('code', ''))}* {escape(a.labels.get('kind', ''))} `{escape(where)}`"
    lines = [head, escape(a.annotations.get("summary", ""))]
    if a.status == FIRING and a.annotations.get("remediation"):
        lines.append("_Fix:_ " + escape(a.annotations["remediation"]))
    if a.annotations.get("impact"):
        lines.append("_Impact:_ " + escape(a.annotations["impact"]))
    block: dict = {"type": "section", "text": {"type": "mrkdwn", "text": _cap("\n".join(lines))}}
    if external_url:
        block["text"]["text"] = _cap(block["text"]["text"] + f"\n<{finding_link(external_url, a.fingerprint)}|open in meshscope>")
    return block


def payload(n: Notification, external_url: str = "") -> dict:
    firing = [a for a in n.alerts if a.status == FIRING]
    resolved = [a for a in n.alerts if a.status != FIRING]
    group = ", ".join(f"{k}={v}" for k, v in sorted(n.group_labels.items())) or "all"
    title = f"[{n.status.upper()}{':' + str(len(firing)) if firing else ''}] meshscope {group}"
    blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": _cap(title, 150)}}]
    ordered = firing + resolved
    room = MAX_BLOCKS - 4  # header, overflow note, divider, context
    for a in ordered[:room]:
        blocks.append(_alert_block(a, external_url))
    if len(ordered) > room:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"…and {len(ordered) - room} more"}})
    blocks.append({"type": "divider"})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"{len(firing)} firing, {len(resolved)} resolved · receiver {escape(n.receiver)}"}]})
    text = escape(title) + ": " + "; ".join(escape(a.annotations.get("summary", "")) for a in ordered[:5])
    return {"text": _cap(text), "blocks": blocks[:MAX_BLOCKS]}


def render(n: Notification, receiver: ReceiverConfig, now: float, external_url: str = "") -> HttpRequest:
    body = json.dumps(payload(n, external_url)).encode()
    return HttpRequest(receiver.url, body, {"Content-Type": "application/json", **receiver.headers})
