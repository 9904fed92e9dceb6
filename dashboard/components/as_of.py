"""Time travel for the whole-page views (issue #14): `?end=` on the Overview and Traces pages.

`?end=` is either seconds before now (`end=300`: the view of five minutes ago,
what the quick links write) or an absolute epoch time (`end=1796000000`: what
the banner's permalink writes, so a link pasted into an incident channel shows
the same instant an hour later). Every number on a page in the past is read at
that instant; what has no history (ingest counters, the scenario switch) says so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dash import dcc, html

from dashboard.components.widgets import when

ENDS = [(0, "now"), (300, "5m ago"), (900, "15m ago"), (3600, "1h ago"), (6 * 3600, "6h ago"), (86400, "24h ago")]
ABSOLUTE_FROM = 1e9  # an `end` this large is an epoch time (2001-09-09), not seconds ago
MAX_END = 4e9  # 2096: beyond is a typo, not an instant


@dataclass(frozen=True)
class AsOf:
    """The instant a page reads: `end` None is live; `note` says why a requested end was not honoured."""

    end: float | None = None
    note: str = ""

    @property
    def past(self) -> bool:
        return self.end is not None


def as_of(query: dict[str, str], now: float, source: Any = None) -> AsOf:
    """The page's instant from `?end=`; a bad, future or (for a source without history) any end reads as live."""
    raw = (query.get("end") or "").strip()
    if not raw:
        return AsOf()
    try:
        value = float(raw)
    except ValueError:
        return AsOf(note=f"end={raw[:40]!r} is not a number of seconds ago or an epoch time; showing live data")
    if not math.isfinite(value) or value < 0 or value > MAX_END:
        return AsOf(note=f"end={raw[:40]!r} must be seconds ago (>= 0) or an epoch time before 2096; showing live data")
    end = value if value >= ABSOLUTE_FROM else now - value
    if value == 0 or end >= now - 1:
        return AsOf(note="" if end <= now + 1 else f"end {when(end)} is in the future; showing live data")
    if source is not None and not hasattr(source, "graph_at"):
        return AsOf(note="this source is a saved snapshot: it has no history to travel in; showing its data")
    return AsOf(end=end)


def open_at(finding: dict[str, Any], end: float) -> bool:
    """Was the finding open at `end`? Its current episode (from `opened_at`) had begun and not yet resolved."""
    start = finding.get("opened_at") or finding.get("first_seen")
    if not start or float(start) > end:
        return False
    if finding.get("status") == "resolved":
        return float(finding.get("resolved_at") or 0) > end
    return finding.get("status") in (None, "open")


def earlier_episode(finding: dict[str, Any], end: float) -> bool:
    """First seen before `end` but reopened since: whether it was open at `end` is not kept (only the
    current episode's bounds are), so a page in the past names these rather than guess."""
    first, opened = finding.get("first_seen"), finding.get("opened_at")
    return bool(first and opened and float(first) <= end < float(opened))


def findings_at(findings: list[dict[str, Any]], end: float | None) -> list[dict[str, Any]]:
    """The findings open at `end` (open ones when live), worst first as the source ranked them.

    As of a past instant a finding resolved since is shown as it was then: status open."""
    from diagnose.findings import SEVERITY_RANK

    if end is None:
        return [f for f in findings if f.get("status") == "open"]
    then = [{**f, "status": "open"} for f in findings if open_at(f, end)]
    return sorted(then, key=lambda f: -SEVERITY_RANK.get(f.get("severity"), 0))  # stable: the source's order within


def timeline_as_of(findings: list[dict[str, Any]], end: float) -> list[dict[str, Any]]:
    """The findings begun by `end`, as they stood then: open if not yet resolved (bars end at `end`)."""
    out = []
    for f in findings:
        start = f.get("opened_at") or f.get("first_seen")
        if not start or float(start) > end:
            continue
        out.append({**f, "status": "open"} if open_at(f, end) else f)
    return out


def links(path: str, query: dict[str, str], current: AsOf, now: float, keep: tuple[str, ...] = ()) -> html.Div:
    """Quick links to the same page at each of ENDS (the other query parameters named in `keep` kept)."""
    from urllib.parse import urlencode

    base = {k: query[k] for k in keep if query.get(k)}
    ago = round(now - current.end) if current.end is not None else 0
    return html.Div(className="toolbar asof-ends", id="asof-ends", children=[
        html.Span("View as of ", className="muted"),
        *[dcc.Link(label, href=f"{path}?{urlencode({**base, 'end': seconds})}" if seconds else
                   (f"{path}?{urlencode(base)}" if base else path),
                   className="active" if abs(seconds - ago) < 2 else "",
                   style={"marginRight": "10px", "fontWeight": "bold" if abs(seconds - ago) < 2 else "normal"})
          for seconds, label in ENDS]])


def banner(path: str, query: dict[str, str], current: AsOf, keep: tuple[str, ...] = ()) -> html.Div | None:
    """'Viewing the past (as of HH:MM:SS) / back to live', with a permalink to the absolute instant."""
    from urllib.parse import urlencode

    base = {k: query[k] for k in keep if query.get(k)}
    if current.note and not current.past:
        return html.Div(id="asof-banner", className="notice warning", children=["⚠ ", current.note])
    if not current.past:
        return None
    live = f"{path}?{urlencode(base)}" if base else path
    permalink = f"{path}?{urlencode({**base, 'end': int(current.end)})}"
    return html.Div(id="asof-banner", className="notice asof", role="status", children=[
        html.Strong("Viewing the past"), f" (as of {when(current.end)}): every number below is read at that instant. ",
        dcc.Link("Back to live", href=live, id="asof-live"), " · ",
        dcc.Link("link to this instant", href=permalink, id="asof-permalink")])
