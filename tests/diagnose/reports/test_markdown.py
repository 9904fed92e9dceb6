"""The Markdown report pastes into a ticket: well-formed tables, escaped cells, ranked findings, SLO burn rates."""
from diagnose.reports import render
from diagnose.reports.markdown import cell

from tests.diagnose.reports.sample import sample_snapshot


def test_tables_stay_well_formed_and_cells_escaped():
    md = render(sample_snapshot(), "md").decode()
    for block in md.split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln.startswith("|")]
        if not lines:
            continue
        widths = {len(ln.replace("\\|", "").split("|")) for ln in lines}
        assert len(widths) == 1, block  # every row has as many cells as the header
    assert "<script>" not in md and "evil&lt;script&gt;alert('x')&lt;/script&gt;\\|svc" in md
    assert "\\`backtick\\`" in md


def test_content_ranked_and_complete():
    s = sample_snapshot()
    md = render(s, "md").decode()
    assert md.startswith("# meshscope diagnostic report\n")
    for h in ("## Mesh summary", "## Topology", "## Findings, ranked by impact (7)", "## SLO status (2)", "## Config inventory (9)"):
        assert h in md
    rows = [ln for ln in md.splitlines() if ln.startswith(("| 1 | error", "| 2 | error"))]
    assert "MS3002" in rows[0] and "MS4001" in rows[1]
    assert "| ratings-availability | ratings.bookinfo | 99.9% | -8.0% | page | 15.10x |" in md
    assert "**Remediation:** Set tls.mode ISTIO_MUTUAL" in md
    assert "reviews v2" in md and "ratings" in md  # unhealthy edges listed by name


def test_cell_escaping():
    assert cell("a|b\nc") == "a\\|b c"
    assert cell(None) == "-"
    assert cell("<img src=x>") == "&lt;img src=x&gt;"
