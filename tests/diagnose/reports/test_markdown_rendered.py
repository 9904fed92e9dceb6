"""The Markdown report as a ticket shows it (GitHub's own renderer, cmark-gfm): hostile strings stay text.

Request paths, header values, trace attributes and config names reach finding messages, evidence
and names. Escaping only pipes, backticks and angle brackets left `[text](url)` links, `![](url)`
images (loaded by every reader of the ticket), bare `https://` and `www.` autolinks and line-start
headings/lists live. Each payload below replaces the sample's hostile service name everywhere it
appears; the rendered report must have exactly the structure of the clean one and show the
payload as text.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from html.parser import HTMLParser
from typing import Any

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from diagnose.reports import render
from tests.diagnose.reports.sample import EVIL, sample_snapshot

PAYLOADS = [
    "[click here](https://evil.example/login)",
    "![pixel](https://evil.example/p.png)",
    "see https://evil.example/x",
    "www.evil.example",
    "<img src=x onerror=alert(1)>",
    "[ref]: https://evil.example",
    "# heading",
    "1. listed",
    "- listed",
    "> quoted",
    "`code` and \\`escaped",
    "a|b|c",
    "[a](javascript:alert(1))",
    "<https://evil.example>",
]
STRUCTURE = ("a", "img", "h1", "h2", "h3", "h4", "h5", "h6", "ol", "ul", "li", "blockquote", "table", "tr", "td",
             "code", "pre", "script", "hr")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tags[tag] += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _rendered(snapshot) -> _Tags:
    md = render(snapshot, "md").decode()
    html = cmarkgfm.github_flavored_markdown_to_html(md, options=Options.CMARK_OPT_UNSAFE)  # raw HTML kept: worst case
    parser = _Tags()
    parser.feed(html)
    return parser


def _swap(value: Any, payload: str) -> Any:
    """`value` with the sample's hostile name replaced by `payload` in every string, at any depth."""
    if isinstance(value, str):
        return value.replace(EVIL, payload)
    if isinstance(value, dict):
        return {_swap(k, payload): _swap(v, payload) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_swap(v, payload) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _swap(getattr(value, f.name), payload)
                                            for f in dataclasses.fields(value) if f.init})
    return value


@pytest.fixture(scope="module")
def clean():
    snapshot = sample_snapshot()
    return snapshot, _rendered(_swap(snapshot, "plainname"))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_strings_render_as_text(clean, payload):
    snapshot, baseline = clean
    hostile = _rendered(_swap(snapshot, payload))
    assert {t: hostile.tags[t] for t in STRUCTURE} == {t: baseline.tags[t] for t in STRUCTURE}
    assert payload in "".join(hostile.text)  # shown as written, backslashes and all


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_message_of_its_own_line_renders_as_text(clean, payload):
    """A finding's message is a paragraph of its own in the details: it must not start a heading, list or quote."""
    snapshot, _ = clean
    plain = dataclasses.replace(snapshot, findings=[{**f, "message": "plainname"} for f in snapshot.findings])
    hostile = dataclasses.replace(snapshot, findings=[{**f, "message": payload} for f in snapshot.findings])
    baseline, rendered = _rendered(plain), _rendered(hostile)
    assert {t: rendered.tags[t] for t in STRUCTURE} == {t: baseline.tags[t] for t in STRUCTURE}
    assert payload in "".join(rendered.text)
