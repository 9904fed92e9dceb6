"""Find/hide expressions become Cytoscape selectors, or errors that name the clause."""
import re

import pytest

from dashboard.components.find_hide import ExpressionError, to_selector


@pytest.mark.parametrize("expr, selector", [
    ("", ""),
    ("rps > 10", "node[rps_in > 10], edge[rps > 10]"),
    ("p95 >= 200ms", "edge[p95_ms >= 200]"),
    ("name ~ reviews", 'node[name *= "reviews"]'),
    ("ns = bookinfo AND health = failing", 'node[namespace = "bookinfo"][health = "failing"]'),
    ("mismatch or error > 5%", 'edge[mtls_state = "mismatch"], node[error_pct > 5], edge[error_pct > 5]'),
    ("!mtls", 'edge[mtls_state = "none"]'),
    ('name = "a\\"b"', 'node[name = "a\\\\\\"b"]'),
])
def test_expressions_translate_to_selectors(expr, selector):
    assert to_selector(expr) == selector


@pytest.mark.parametrize("expr, message", [
    ("colour = red", "unknown field 'colour'"),
    ("rps > lots", "rps needs a number"),
    ("name > 3", "compares numbers; name is text"),
    ("name = a and p95 > 3", "mixes node and edge fields"),
    ("rps >", "cannot read 'rps >'"),
    ("rps > 1 and", "empty clause"),
])
def test_bad_expressions_name_the_problem(expr, message):
    with pytest.raises(ExpressionError, match=re.escape(message)):
        to_selector(expr)
