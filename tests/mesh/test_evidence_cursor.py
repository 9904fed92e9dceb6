"""The tests' LogCursor keeps reading the records written after it started across log rotations."""
from __future__ import annotations

import json
from types import SimpleNamespace

from tests.mesh.evidence import LogCursor


def _write(path, *ids):
    with open(path, "a") as f:
        for i in ids:
            f.write(json.dumps({"id": i}) + "\n")


def _rotate(path, keep=2):
    for n in range(keep, 0, -1):
        src = path.with_name(f"{path.name}.{n - 1}") if n > 1 else path
        if src.exists():
            src.rename(path.with_name(f"{path.name}.{n}"))


def test_cursor_reads_across_rotations_without_older_records(tmp_path):
    log = tmp_path / "bookinfo.details-v1.log"
    _write(log, 1, 2)
    cursor = LogCursor(SimpleNamespace(access_log_paths=lambda: [log]), "details-v1")
    _write(log, 3)
    _rotate(log)
    _write(log, 4)
    _rotate(log)
    _write(log, 5, 6)
    assert [r["id"] for r in cursor.records()] == [3, 4, 5, 6]


def test_cursor_on_a_log_that_did_not_exist_yet_reads_everything(tmp_path):
    log = tmp_path / "bookinfo.ratings-v1.log"
    cursor = LogCursor(SimpleNamespace(access_log_paths=lambda: [log]), "ratings-v1")
    _write(log, 1)
    _rotate(log)
    _write(log, 2)
    assert [r["id"] for r in cursor.records()] == [1, 2]
