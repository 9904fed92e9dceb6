"""A tailer poll parses and stores every file's new lines together (#18), and what it stores and refuses is exactly
what tailing each file alone gives: each row with its own file's identity and source, each refused line named by
its file and its line there, every cursor moved, whatever the files hold (blank and whitespace-only lines, bad
JSON, overflowing numbers, impossible dates, invalid UTF-8, a whitespace line over the line limit, two objects
on one line, half-written last lines, JSON and text files side by side)."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd

from collector.parse.access_log import MAX_LINE_BYTES
from collector.sources import access_log
from collector.sources.access_log import AccessLogTailer, LogFile, checkpoint_key
from collector.store import TelemetryStore

DATA = Path(__file__).parent / "data"
JSON_REAL = (DATA / "envoy_access_json.log").read_bytes().splitlines()
TEXT_REAL = (DATA / "envoy_access_text.log").read_bytes().splitlines()
YEAR = 365 * 86400.0  # the recorded lines are from November 2026: a store window that still holds them
HOSTILE = [b"", b"   \t ", b"\r", b"{not json", b'{"start_time": "2026-02-30T00:00:00Z"}', b"\xff\xfe binary \x00",
           b"{}{}", b" " * (MAX_LINE_BYTES + 10), b"-", b'"just a string"']


class _Recording(AccessLogTailer):
    """A real tailer that also keeps every refused line it counts: (file, line, reason)."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.refused: list[tuple[str, int, str]] = []

    def _count_errors(self, path: str, errors: list) -> None:
        self.refused += [(path, e.line, e.reason) for e in errors]
        super()._count_errors(path, errors)


def _line(rng: random.Random, text: bool, i: int) -> bytes:
    if rng.random() < 0.15:
        return rng.choice(HOSTILE)
    if text:
        return TEXT_REAL[i % len(TEXT_REAL)].replace(b'" "reviews"', f'" "reviews-{i}"'.encode(), 1)
    obj = json.loads(JSON_REAL[i % len(JSON_REAL)])
    obj["request_id"] = f"r-{i}"
    if rng.random() < 0.05:
        obj["bytes_sent"] = 2**64 - 1  # Envoy's counters are uint64: out of range for the store
    return json.dumps(obj).encode()


def _files(tmp: Path, n: int) -> list[LogFile]:
    return [LogFile(str(tmp / f"sidecar-{k}.log"), f"wl-{k}", f"ns-{k % 2}", f"spiffe://cluster.local/ns/ns-{k % 2}/sa/sa-{k}")
            for k in range(n)]


def _frame(store: TelemetryStore) -> pd.DataFrame:
    df = store.requests()
    for c in df.columns:  # values, not dictionary encodings
        if isinstance(df[c].dtype, pd.CategoricalDtype):
            df[c] = df[c].astype(str)
    return df.sort_values(list(df.columns)).reset_index(drop=True)


def _tail_both(tmp: Path, seed: int, n_files: int = 5, rounds: int = 6, **tailer) -> tuple[_Recording, TelemetryStore]:
    rng = random.Random(seed)
    specs = _files(tmp, n_files)
    joint_store, alone_stores = TelemetryStore(window_s=YEAR), [TelemetryStore(window_s=YEAR) for _ in specs]
    joint = _Recording(specs, joint_store, **tailer)
    alone = [_Recording([spec], st, **tailer) for spec, st in zip(specs, alone_stores)]
    text = {spec.path: k % 3 == 2 for k, spec in enumerate(specs)}  # every third file in Istio's text format
    pending = {spec.path: b"" for spec in specs}
    i = 0
    for _ in range(rounds):
        for spec in specs:
            if rng.random() < 0.2:
                continue  # a quiet sidecar this round
            lines = []
            for _ in range(rng.randint(1, 12)):
                lines.append(_line(rng, text[spec.path], i))
                i += 1
            data = pending[spec.path] + b"\n".join(lines) + b"\n"
            cut = len(data) - rng.randint(1, 30) if rng.random() < 0.3 else len(data)  # a line half written
            with open(spec.path, "ab") as f:
                f.write(data[:cut])
            pending[spec.path] = data[cut:]
        joint.poll()
        for t in alone:
            t.poll()
        want = pd.concat([_frame(st) for st in alone_stores], ignore_index=True)
        want = want.sort_values(list(want.columns)).reset_index(drop=True)
        pd.testing.assert_frame_equal(_frame(joint_store), want)
        assert sorted(joint.refused) == sorted(r for t in alone for r in t.refused)
        for spec, t, st in zip(specs, alone, alone_stores):
            key = checkpoint_key(spec.path)
            assert joint_store.checkpoints().get(key) == st.checkpoints().get(key)
    return joint, joint_store


def test_a_poll_stores_what_each_file_alone_stores(tmp_path):
    for seed in range(3):
        d = tmp_path / f"s{seed}"
        d.mkdir()
        joint, store = _tail_both(d, seed)
        assert joint.refused and store.row_count("requests") > 50  # the mix held both kinds


def test_one_commit_per_poll_for_all_files(tmp_path):
    specs = _files(tmp_path, 6)
    store = TelemetryStore(window_s=YEAR)
    tailer = AccessLogTailer(specs, store)
    for spec in specs:
        Path(spec.path).write_bytes(b"\n".join(JSON_REAL[:3]) + b"\n")
    tailer.poll()
    before = store.generation("requests")
    for k, spec in enumerate(specs):
        with open(spec.path, "ab") as f:
            f.write(b"\n".join(JSON_REAL[k:k + 2]) + b"\n")
    assert tailer.poll() == 2 * len(specs)
    assert store.generation("requests") == before + 1  # one write for six files' new lines
    df = store.requests()
    mine = df[df["reporter"] == "source"]
    assert set(zip(mine["log_source"].astype(str), mine["source_workload"].astype(str))) <= {
        (s.path, s.workload) for s in specs}  # each row has its own file's identity


def test_rows_that_cannot_be_told_apart_fall_back_to_each_file_alone(tmp_path, monkeypatch):
    # a miscount of the lines that give no row (here: whitespace-only lines not seen as blank) must not put a row
    # under another file's name: the poll then ingests each file alone, and stores the same as before
    monkeypatch.setattr(access_log, "_blank_lines", lambda chunk: 0)
    joint, store = _tail_both(tmp_path, seed=11, rounds=4)
    assert store.row_count("requests") > 20


def test_each_source_reports_the_cpu_it_spends(tmp_path):
    """meshscope_collector_cpu_seconds_total{source} grows with the work a source does (an SRE's view of where an
    idle meshscope's CPU goes), and not while it has nothing to do."""
    from collector import selfmetrics

    def cpu() -> float:
        return selfmetrics.INGEST_CPU.labels("access_log")._value.get()

    specs = _files(tmp_path, 3)
    tailer = AccessLogTailer(specs, TelemetryStore(window_s=YEAR))
    for spec in specs:
        Path(spec.path).write_bytes(b"\n".join(JSON_REAL * 40) + b"\n")
    before = cpu()
    assert tailer.poll() == 3 * 40 * len(JSON_REAL)
    busy = cpu() - before
    assert busy > 0
    idle_before = cpu()
    for _ in range(5):
        assert tailer.poll() == 0  # nothing new: a stat and an empty read per file
    assert cpu() - idle_before < busy


def test_a_backlog_is_parsed_in_pieces_bounded_in_bytes(tmp_path, monkeypatch):
    """After the process was starved of CPU (or a burst), every file has a backlog: one poll reads it all, but no
    parse holds more than `max_batch_bytes` of lines at once (a joint run of several files' pieces, or one file's
    piece), and what is stored is the same rows, refusals and cursors as tailing each file alone."""
    cap = 6000
    seen: list[int] = []
    for name in ("parse_json_log", "parse_text_log"):
        real = getattr(access_log, name)

        def spy(data, *a, _real=real, **kw):
            seen.append(len(data))
            return _real(data, *a, **kw)

        monkeypatch.setattr(access_log, name, spy)
    monkeypatch.setitem(globals(), "HOSTILE", [h for h in HOSTILE if len(h) < 100])  # every line under the cap
    joint, store = _tail_both(tmp_path, seed=5, n_files=6, rounds=3, max_batch_bytes=cap)
    assert store.row_count("requests") > 20
    assert seen and max(seen) <= cap
    assert sum(n > cap // 2 for n in seen) >= 2  # the backlog really was cut: several well-filled pieces
