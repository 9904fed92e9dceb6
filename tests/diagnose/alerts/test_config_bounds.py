"""The alerts file is read with the same bounds as config YAML: a nesting or alias bomb is a problem naming the
line, never a traceback or a blow-up. Before, a file nested 5,000 deep raised RecursionError out of
`parse_alerts_config` (a traceback from `meshscope up --alerts` and `serve --alerts`)."""
from __future__ import annotations

import time

import pytest

from diagnose.alerts.config import parse_alerts_config

GOOD = "receivers:\n- name: hook\n  url: http://127.0.0.1:9/h\n"


def _laughs() -> str:
    text, prev = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n', "a"
    for n in "bcdefghi":
        text += f"{n}: &{n} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        prev = n
    return text


@pytest.mark.parametrize("hostile, line", [
    ("x: " + "[" * 5000 + "]" * 5000 + "\n", 1),
    ("x:\n" + "".join("  " * i + "- \n" for i in range(1, 3000)), 0),
    (_laughs(), 0),
])
def test_bombs_are_problems_with_a_line(hostile, line):
    t = time.process_time()
    loaded = parse_alerts_config(GOOD + hostile, "alerts.yaml")
    assert time.process_time() - t < 10
    assert loaded.problems and all(p.file == "alerts.yaml" for p in loaded.problems)
    assert any(word in loaded.problems[0].message for word in ("nesting", "depth", "alias", "nodes"))
    if line:
        assert loaded.problems[0].line >= line


def test_a_plain_file_still_loads():
    loaded = parse_alerts_config(GOOD, "alerts.yaml")
    assert not loaded.problems and [r.name for r in loaded.config.receivers] == ["hook"]
