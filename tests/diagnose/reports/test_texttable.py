"""Monospace text tables for the PDF: columns stay aligned when cells wrap, nothing is cut, values are escaped."""
import html
import re

from diagnose.reports.texttable import GAP, Column, text_table, widths


def plain(markup: str) -> str:
    return html.unescape(re.sub(r"</?span[^>]*>", "", markup))


def test_fits_the_width_and_wraps_long_cells_inside_their_column():
    cols = [Column("Kind"), Column("Name", 8), Column("Source", 8, right=False), Column("N", 1, right=True)]
    rows = [["Service", "reviews", "bookinfo.yaml:1", 3],
            ["DestinationRule", "a-very-long-destination-rule-name-that-wraps", "some/deep/path/to/a/file/bookinfo.yaml:120", 12]]
    header, body = text_table(cols, rows, total=60)
    lines = plain(body).split("\n")
    assert all(len(line) <= 60 for line in [header, *lines])
    # every character of every value survives the wrapping, in order, within its column
    w = widths(cols, [[str(v) for v in r] for r in rows], 60)
    starts = [sum(w[:i]) + GAP * i for i in range(len(w))]
    for col, value in ((1, rows[1][1]), (2, rows[1][2])):
        pieces = [line[starts[col]:starts[col] + w[col]].strip() for line in lines[1:]]
        assert "".join(pieces) == value
    assert lines[0].split() == ["Service", "reviews", "bookinfo.yaml:1", "3"]
    assert lines[1].endswith("12") and lines[0].endswith(" 3")  # numbers right-aligned
    assert header.split() == ["Kind", "Name", "Source", "N"]


def test_short_tables_keep_their_natural_widths():
    cols = [Column("A"), Column("B")]
    assert widths(cols, [["x", "yy"]], 100) == [1, 2]


def test_values_are_escaped_and_whitespace_cannot_break_rows():
    header, body = text_table([Column("Name"), Column("Note")], [["evil<script>x</script>", "two\nlines\tand tab"]], 80)
    assert "<script>" not in body and "&lt;script&gt;" in body
    assert plain(body) == "evil<script>x</script>  two lines and tab"


def test_rows_of_one_class_share_one_span():
    rows = [["failing", "a"], ["failing", "b"], ["healthy", "c"], ["degraded", "d"]]
    cls = {"failing": "h-failing", "degraded": "h-degraded"}
    _, body = text_table([Column("Health"), Column("Name")], rows, 40, row_class=lambda r: cls.get(r[0]))
    assert body.count("<span") == 2
    assert body.startswith('<span class="h-failing">failing   a\nfailing   b</span>\nhealthy   c\n<span class="h-degraded">')
