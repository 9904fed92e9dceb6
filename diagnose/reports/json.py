"""The machine form: the snapshot itself, findings ranked by impact, as documented in report.schema.json.

Loading a JSON report back (`load_snapshot`) gives the same snapshot, so a JSON
report doubles as the saved snapshot `meshscope report --snapshot` reads.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from diagnose.reports import view
from diagnose.reports.snapshot import Snapshot
from diagnose.terminal_text import json_safe

SCHEMA_PATH = Path(__file__).parent / "report.schema.json"


def report_dict(snapshot: Snapshot) -> dict[str, Any]:
    d = snapshot.to_dict()
    d["findings"] = view.ranked_findings(snapshot)
    return d


def render_json(snapshot: Snapshot, indent: int | None = 1) -> str:
    # the same data; the characters json.dumps leaves raw that drive a terminal (C1, bidi) as \\u escapes
    return json_safe(json.dumps(report_dict(snapshot), indent=indent, default=str, ensure_ascii=False)) + "\n"


def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
