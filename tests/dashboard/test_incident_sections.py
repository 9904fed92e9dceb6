"""The Overview and the Findings page lead with incidents (root cause first, then its findings)."""
from types import SimpleNamespace

from dashboard.pages import findings as findings_page
from dashboard.pages import overview
from dashboard.sample import bookinfo_snapshot
from dashboard.snapshot_source import SnapshotSource


def walk(node):
    yield node
    children = getattr(node, "children", None)
    if isinstance(children, (list, tuple)):
        for c in children:
            yield from walk(c)
    elif children is not None:
        yield from walk(children)


def by_id(tree, ident):
    return next(n for n in walk(tree) if getattr(n, "id", None) == ident)


def text(node) -> str:
    return " ".join(str(n) for n in walk(node) if isinstance(n, (str, int, float)))


def test_overview_and_findings_page_lead_with_incidents():
    source = SnapshotSource(bookinfo_snapshot())
    ctx = SimpleNamespace(refresh_s=5.0)
    open_codes = {f["code"] for f in source.findings({"status": "open"})}
    page = overview.layout(source, ctx, {})
    incidents = by_id(page, "ov-incidents")
    ids = [getattr(n, "id", None) for n in walk(page)]
    assert ids.index("ov-incidents") < ids.index("ov-findings")  # incidents come before the finding list
    shown = text(incidents)
    assert all(code in shown for code in open_codes)  # every open finding appears under some incident
    first = incidents.children[0]
    assert "incident-" in first.className
    fpage = findings_page.layout(source, ctx, {})
    ids = [getattr(n, "id", None) for n in walk(fpage)]
    assert ids.index("find-incidents") < ids.index("find-table")
    assert all(code in text(by_id(fpage, "find-incidents")) for code in open_codes)
