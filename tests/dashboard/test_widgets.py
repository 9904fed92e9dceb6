"""Shared widgets lay data out as text (never HTML) and mark what matters."""
from dash import html

from dashboard.components.widgets import finding_detail, kv_table, yaml_excerpt


def _texts(component) -> list[str]:
    out = []
    children = getattr(component, "children", None)
    if isinstance(children, str):
        out.append(children)
    elif isinstance(children, (list, tuple)):
        for c in children:
            out.extend([c] if isinstance(c, str) else _texts(c))
    elif children is not None:
        out.extend(_texts(children))
    return out


def _find(component, cls: type, found=None) -> list:
    found = [] if found is None else found
    if isinstance(component, cls):
        found.append(component)
    children = getattr(component, "children", None)
    for c in children if isinstance(children, (list, tuple)) else [children]:
        if c is not None and not isinstance(c, str):
            _find(c, cls, found)
    return found


def test_evidence_records_become_a_nested_table():
    table = kv_table({"edges": [{"source": "a", "rps": 1.5}, {"source": "<b>", "flags": "UC"}], "count": 3})
    nested = [t for t in _find(table, html.Table) if "records" in (t.className or "")]
    assert len(nested) == 1
    assert [th.children for th in _find(nested[0], html.Th)] == ["source", "rps", "flags"]
    assert "<b>" in _texts(nested[0]) and "3" in _texts(table)


def test_yaml_excerpt_marks_only_the_offending_lines():
    view = yaml_excerpt({"ref": "DestinationRule ns/x", "lines": [[1, "spec:"], [2, "  tls:"], [3, "    mode: DISABLE"]],
                         "highlight": [3]})
    lines = [s for s in _find(view, html.Span) if "yaml-line" in (s.className or "")]
    assert [s.className for s in lines] == ["yaml-line", "yaml-line", "yaml-line hl"]


def test_finding_detail_links_sample_traces_and_the_graph():
    detail = finding_detail({"code": "MS3002", "severity": "error", "category": "runtime", "message": "m",
                             "fingerprint": "MS3002|Service a/b|", "elements": ["x"],
                             "evidence": {"sample_trace_ids": ["abc123"]}})
    hrefs = [getattr(c, "href", None) for c in _find(detail, object) if getattr(c, "href", None)]
    assert "/traces?trace=abc123" in hrefs and "/topology?highlight=MS3002%7CService%20a%2Fb%7C" in hrefs
