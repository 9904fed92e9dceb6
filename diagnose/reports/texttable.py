"""Tables as monospace text, for the PDF: WeasyPrint lays out a `<table>` cell by cell (about 2.5 s
of CPU per 1,000 rows here) but a pre-wrapped text block in a tenth of that, so long tables in
the PDF are aligned text with cells wrapped inside their column.

The output is markup: every value is HTML-escaped here, and only the optional per-cell class
adds a `<span>` (e.g. the severity colour), so a service name cannot inject anything.
"""
from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

GAP = 2  # spaces between columns


@dataclass(frozen=True)
class Column:
    """One column: header, the narrowest it may be squeezed to, the widest it may take before the others
    (so a long message column gets the room), right alignment for numbers, and an optional CSS class
    chosen per value (None: plain text)."""
    name: str
    min_width: int = 6
    max_width: int | None = None
    right: bool = False
    css: Callable[[str], str | None] | None = None


def _clean(value: Any) -> str:
    text = "-" if value is None or value == "" else str(value)
    return " ".join(text.split())  # newlines or tabs in a value would break the alignment


def widths(columns: Sequence[Column], rows: Sequence[Sequence[str]], total: int) -> list[int]:
    """Natural widths, the widest columns cut down to a common limit until the table fits `total` chars."""
    natural = [max([len(c.name)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    natural = [min(n, max(c.max_width, len(c.name))) if c.max_width else n for n, c in zip(natural, columns)]
    room = total - GAP * (len(columns) - 1)
    if sum(natural) <= room:
        return natural
    lo, hi = 1, max(natural)
    while lo < hi:  # the largest cap L with sum(min(n, max(L, min_width))) <= room
        mid = (lo + hi + 1) // 2
        if sum(min(n, max(mid, c.min_width)) for n, c in zip(natural, columns)) <= room:
            lo = mid
        else:
            hi = mid - 1
    return [min(n, max(lo, c.min_width)) for n, c in zip(natural, columns)]


def _wrap(text: str, width: int) -> list[str]:
    if len(text) <= width:
        return [text]
    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]


def _cell(text: str, width: int, col: Column, first: bool, value: str) -> str:
    padded = text.rjust(width) if col.right else text.ljust(width)
    cls = col.css(value) if (col.css and first and text) else None
    return f'<span class="{escape(cls)}">{escape(padded)}</span>' if cls else escape(padded)


def text_table(columns: Sequence[Column], rows: Sequence[Sequence[Any]], total: int,
               row_class: Callable[[Sequence[str]], str | None] | None = None) -> tuple[str, str]:
    """(header line, body lines) as escaped markup for a `white-space: pre-wrap` monospace block.

    `row_class` colours whole rows; consecutive rows of one class share a single `<span>`, because
    every inline box costs WeasyPrint layout time (rows sorted by health need only a few spans).
    """
    cells = [[_clean(v) for v in r] for r in rows]
    w = widths(columns, cells, total)
    gap = " " * GAP
    header = gap.join(escape(c.name.ljust(n)) for c, n in zip(columns, w)).rstrip()
    runs: list[tuple[str | None, list[str]]] = []
    for r in cells:
        wrapped = [_wrap(v, n) for v, n in zip(r, w)]
        height = max(len(x) for x in wrapped)
        lines = [gap.join(_cell(x[k] if k < len(x) else "", n, c, k == 0, v) for x, n, c, v in zip(wrapped, w, columns, r)).rstrip()
                 for k in range(height)]
        cls = row_class(r) if row_class else None
        if runs and runs[-1][0] == cls:
            runs[-1][1].extend(lines)
        else:
            runs.append((cls, lines))
    body = [f'<span class="{escape(cls)}">' + "\n".join(lines) + "</span>" if cls else "\n".join(lines) for cls, lines in runs]
    return header, "\n".join(body)
