"""Time travel for the whole-page views (issue #14): `?end=` on the Overview and Traces pages.

`?end=` is either seconds before now (`end=300`: the view of five minutes ago,
what the quick links write), an absolute epoch time (`end=1796000000`: what
the banner's permalink writes, so a link pasted into an incident channel shows
the same instant an hour later) or a UTC date-time (`end=2026-12-06T21:30`, what
the page's date-time picker submits). `?window=` is the window's length (30s, 5m,
1h, 1d or seconds), at most the store's retention. Every number on a page in the
past is read at that instant; what has no history (ingest counters, the scenario
switch) says so. One parser for every page: `as_of` and `window_of`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from dash import dcc, html

from dashboard.components.widgets import when

ENDS = [(0, "now"), (300, "5m ago"), (900, "15m ago"), (3600, "1h ago"), (6 * 3600, "6h ago"), (86400, "24h ago")]
ABSOLUTE_FROM = 1e9  # an `end` this large is an epoch time (2001-09-09), not seconds ago
MAX_END = 4e9  # 2096: beyond is a typo, not an instant
RETENTION_S = 86400.0  # the bundled store's history (a source with `retention_s()` says its own)
MIN_WINDOW_S = 10.0  # a shorter window holds no scrape on a 5-10 s scrape interval
WINDOWS = [(30, "30s"), (60, "1m"), (300, "5m"), (900, "15m"), (3600, "1h"), (6 * 3600, "6h"), (86400, "1d")]
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


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
    value = _epoch_of_iso(raw)
    absolute = value is not None  # a date-time is an instant even before 2001 (not "seconds ago")
    if value is None:
        try:
            value = float(raw)
        except ValueError:
            return AsOf(note=f"end={raw[:40]!r} is not seconds ago, an epoch time or a UTC date-time "
                             "(2026-12-06T21:30); showing live data")
    if not math.isfinite(value) or value < 0 or value > MAX_END:
        return AsOf(note=f"end={raw[:40]!r} must be seconds ago (>= 0) or an epoch time before 2096; showing live data")
    end = value if absolute or value >= ABSOLUTE_FROM else now - value
    if value == 0 or end >= now - 1:
        return AsOf(note="" if end <= now + 1 else f"end {when(end)} is in the future; showing live data")
    if source is not None and not hasattr(source, "graph_at"):
        return AsOf(note="this source is a saved snapshot: it has no history to travel in; showing its data")
    keep = retention_of(source)
    if end < now - keep:
        return AsOf(note=f"end {when(end)} is older than the store keeps ({_span(keep)}); showing live data")
    return AsOf(end=end)


def services_at(source: Any, at: AsOf, window: Window) -> list[dict[str, Any]]:
    """The services over the page's window ending at its instant (a snapshot has the one window it saved)."""
    if hasattr(source, "graph_at") and (at.past or window.asked):
        return source.services(end=at.end, window_s=window.seconds)
    return source.services()


def _epoch_of_iso(raw: str) -> float | None:
    """A date-time as the picker submits it (no zone: UTC, as every time on the pages is shown), else None."""
    if not _ISO.match(raw):
        return None
    try:
        t = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()


def retention_of(source: Any) -> float:
    """How far back the source's history reaches (`retention_s()` if it says, else the bundled default)."""
    fn = getattr(source, "retention_s", None)
    try:
        keep = float(fn()) if callable(fn) else RETENTION_S
    except Exception:  # noqa: BLE001 - a bound is a guard; the default one still applies
        keep = RETENTION_S
    return keep if math.isfinite(keep) and keep > 0 else RETENTION_S


@dataclass(frozen=True)
class Window:
    """A page's window length in seconds; `asked` whether the URL chose it; `note` why a request was not honoured."""

    seconds: float
    asked: bool = False
    note: str = ""


def window_of(query: dict[str, str], default: float, source: Any = None) -> Window:
    """`?window=` (30s, 5m, 1h30m, 1d, or seconds) bounded by [MIN_WINDOW_S, retention]; bad values fall back
    to `default` with a note, an over-long one is cut to the retention with a note."""
    from diagnose.slo import parse_duration

    raw = (query.get("window") or "").strip()
    if not raw:
        return Window(float(default))
    try:
        seconds = float(raw) if re.fullmatch(r"\d+(\.\d+)?", raw) else parse_duration(raw)
    except (ValueError, TypeError):
        return Window(float(default), note=f"window={raw[:40]!r} is not a duration (30s, 5m, 1h, 1d); "
                                           f"showing {_span(default)}")
    if not math.isfinite(seconds) or seconds <= 0:
        return Window(float(default), note=f"window={raw[:40]!r} must be a positive duration; showing {_span(default)}")
    keep = retention_of(source)
    if seconds > keep:
        return Window(keep, True, note=f"window={raw[:40]!r} is longer than the store keeps; showing {_span(keep)}")
    if seconds < MIN_WINDOW_S:
        return Window(MIN_WINDOW_S, True, note=f"window={raw[:40]!r} is shorter than a scrape; showing {_span(MIN_WINDOW_S)}")
    return Window(seconds, True)


def _span(seconds: float) -> str:
    from diagnose.slo import format_duration
    return format_duration(seconds)


def window_options(current: float) -> list[tuple[float, str]]:
    """WINDOWS plus the current length when the URL asked for another one (so the select shows it)."""
    out = list(WINDOWS)
    if all(abs(v - current) > 0.5 for v, _ in out):
        out = sorted([*out, (current, _span(current))])
    return out


def episode_at(finding: dict[str, Any], end: float) -> tuple[float, float | None] | None:
    """(onset, resolution or None if still open) of the finding's episode that held `end`; None if none did.

    The current episode runs from `opened_at`; the closed ones before it are `episodes` ([[opened, resolved]])."""
    start = finding.get("opened_at") or finding.get("first_seen")
    if start and float(start) <= end:
        if finding.get("status") == "resolved":
            resolved = float(finding.get("resolved_at") or 0)
            return (float(start), resolved) if resolved > end else None
        return (float(start), None) if finding.get("status") in (None, "open") else None
    for opened, resolved in finding.get("episodes") or []:
        if float(opened) <= end < float(resolved):
            return float(opened), float(resolved)
    return None


def open_at(finding: dict[str, Any], end: float) -> bool:
    """Was the finding open at `end`? In its current episode, or in one of the earlier ones it recorded."""
    return episode_at(finding, end) is not None


def earlier_episode(finding: dict[str, Any], end: float) -> bool:
    """Whether the finding's state at `end` is unknown: first seen before `end`, reopened since, and its recorded
    episodes do not reach back to `end` (a state saved before episodes were kept, or more than the last
    EPISODES_KEPT). A page in the past names these rather than guess."""
    first, opened = finding.get("first_seen"), finding.get("opened_at")
    if not (first and opened and float(first) <= end < float(opened)):
        return False
    episodes = finding.get("episodes") or []
    if not episodes:
        return True
    recorded_from = float(episodes[0][0])
    return end < recorded_from and recorded_from > float(first) + 1.0


def _as_then(finding: dict[str, Any], end: float) -> dict[str, Any]:
    """The finding as it stood at `end`, in the episode that held it: open, from that episode's onset."""
    onset, _ = episode_at(finding, end) or (finding.get("opened_at"), None)
    return {**finding, "status": "open", "opened_at": onset, "resolved_at": None}


def findings_at(findings: list[dict[str, Any]], end: float | None) -> list[dict[str, Any]]:
    """The findings open at `end` (open ones when live), worst first as the source ranked them.

    As of a past instant a finding resolved since is shown as it was then: status open."""
    from diagnose.findings import SEVERITY_RANK

    if end is None:
        return [f for f in findings if f.get("status") == "open"]
    then = [_as_then(f, end) for f in findings if open_at(f, end)]
    return sorted(then, key=lambda f: -SEVERITY_RANK.get(f.get("severity"), 0))  # stable: the source's order within


def timeline_as_of(findings: list[dict[str, Any]], end: float) -> list[dict[str, Any]]:
    """The findings begun by `end`, as they stood then: open if not yet resolved (bars end at `end`)."""
    out = []
    for f in findings:
        if open_at(f, end):
            out.append(_as_then(f, end))
            continue
        start = f.get("opened_at") or f.get("first_seen")
        if start and float(start) <= end:
            out.append(f)  # resolved by then
        elif f.get("episodes") and float(f["episodes"][0][0]) <= end:  # came back since: its last episode before
            opened, resolved = max((e for e in f["episodes"] if float(e[0]) <= end), key=lambda e: float(e[0]))
            out.append({**f, "status": "resolved", "opened_at": opened, "resolved_at": resolved})
    return out


def links(path: str, query: dict[str, str], current: AsOf, now: float, keep: tuple[str, ...] = (),
          window: Window | None = None) -> html.Div:
    """Quick links to the same page at each of ENDS (the query parameters named in `keep`, and the window, kept),
    then the picker of any instant and any length (`time_form`)."""
    from urllib.parse import urlencode

    keep = (*keep, "window")
    base = {k: query[k] for k in keep if query.get(k)}
    ago = round(now - current.end) if current.end is not None else 0
    return html.Div(className="toolbar asof-ends", id="asof-ends", children=[
        html.Span("View as of ", className="muted"),
        *[dcc.Link(label, href=f"{path}?{urlencode({**base, 'end': seconds})}" if seconds else
                   (f"{path}?{urlencode(base)}" if base else path),
                   className="active" if abs(seconds - ago) < 2 else "",
                   style={"marginRight": "10px", "fontWeight": "bold" if abs(seconds - ago) < 2 else "normal"})
          for seconds, label in ENDS],
        time_form(path, query, current, window, keep)])


def iso_utc(epoch: float | None) -> str:
    """The picker's value of an instant (UTC, to the second); '' is live."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(int(epoch), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def time_form(path: str, query: dict[str, str], current: AsOf, window: Window | None,
              keep: tuple[str, ...] = (), prefix: str = "asof") -> html.Form:
    """A plain GET form: a UTC date-time (empty = live) and a window length, submitted as `?end=&window=` with
    the page's other parameters kept, so the URL it opens is the link to the same view."""
    hidden = [dcc.Input(type="hidden", name=k, value=query[k]) for k in keep
              if query.get(k) and k not in ("end", "window")]
    controls: list[Any] = [*hidden, html.Span(" ends at (UTC) ", className="muted"),
                           dcc.Input(id=f"{prefix}-at", type="datetime-local", name="end", step=1,
                                     value=iso_utc(current.end), debounce=True, style={"width": "200px"})]
    if window is not None:
        controls += [html.Span(" window ", className="muted"), html.Select(
            id=f"{prefix}-window", name="window", children=[
                html.Option(label, value=label, selected=abs(v - window.seconds) < 0.5)
                for v, label in window_options(window.seconds)])]
    controls.append(html.Button("Show", id=f"{prefix}-go", type="submit", style={"marginLeft": "6px"}))
    if window is not None and window.note:
        controls.append(html.Span(["⚠ ", window.note], id=f"{prefix}-window-note", className="notice warning"))
    return html.Form(id=f"{prefix}-form", action=path, method="get", style={"display": "inline-block"},
                     children=controls)


def banner(path: str, query: dict[str, str], current: AsOf, keep: tuple[str, ...] = ()) -> html.Div | None:
    """'Viewing the past (as of HH:MM:SS) / back to live', with a permalink to the absolute instant."""
    from urllib.parse import urlencode

    base = {k: query[k] for k in (*keep, "window") if query.get(k)}
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
