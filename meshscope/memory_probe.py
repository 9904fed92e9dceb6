"""Where a running process's memory sits, by holder (#18): what RSS is made of, not just how much.

Why: RSS alone said "784 MB and rising" for an hour and nothing more; a quarter of it was anonymous memory no
counter explained. Each allocator keeps its own books, and the kernel's view (/proc/self/smaps) keeps another; this
module reads them all at one moment so they can be set beside each other:
- the kernel: resident anonymous memory by mapping kind (thread stacks, glibc heaps, other anonymous mappings by
  size), file-backed pages, and pages handed back lazily (`LazyFree`: MADV_FREE pages still counted in RSS until
  the kernel needs them) and transparent huge pages;
- glibc (`mallinfo2`): bytes in its heaps, in use and free, and in blocks mapped on their own;
- Python's small-object allocator (`sys._debugmallocstats`): arenas and the bytes used in them;
- Arrow: its pool's bytes, and jemalloc's own statistics (allocated, active, resident, retained, metadata);
- threads, by name.
`meshscope up` and `serve` write one JSON line of these every `MESHSCOPE_MEMORY_PROBE_EVERY` seconds (60) to the
file named by `MESHSCOPE_MEMORY_PROBE` when set (off by default: it costs a walk of smaps and, with
`MESHSCOPE_MEMORY_PROBE_TRACE=1`, tracemalloc's overhead on every allocation). With tracing on, each line also holds
the allocation sites that grew most since the previous line, and the object types whose count grew.
"""
from __future__ import annotations

import collections
import ctypes
import ctypes.util
import gc
import glob
import json
import logging
import os
import re
import sys
import tempfile
import threading
import time
from typing import Any

log = logging.getLogger("meshscope.memory_probe")

MB = 2**20
_STACK_VM = 8 * MB  # glibc's default thread stack (ulimit -s 8192), plus one guard page below it


def smaps(pid: int | str = "self") -> dict[str, Any]:
    """Resident kB of the process's mappings, grouped by what holds them (the kernel's books)."""
    maps: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split(None, 5)
            if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                cur = {"size": hi - lo, "perms": head[1], "path": head[5].strip() if len(head) > 5 else "",
                       "lo": lo, "hi": hi}
                maps.append(cur)
            elif cur is not None and head[0] in ("Rss:", "LazyFree:", "AnonHugePages:", "Anonymous:", "Swap:"):
                cur[head[0][:-1]] = int(head[1])
    out: dict[str, Any] = collections.defaultdict(float)
    by_size: dict[str, float] = collections.defaultdict(float)
    for i, m in enumerate(maps):
        rss = m.get("Rss", 0) / 1024
        out["rss"] += rss
        out["lazyfree"] += m.get("LazyFree", 0) / 1024
        out["anon_huge"] += m.get("AnonHugePages", 0) / 1024
        path = m["path"]
        if path and not path.startswith("["):
            out["file"] += rss
            continue
        if path == "[heap]":
            out["brk_heap"] += rss
            continue
        if path.startswith("["):
            out["other_special"] += rss
            continue
        # an anonymous rw mapping right above a 4 KiB no-access guard page, 8 MiB long: a thread's stack
        below = maps[i - 1] if i else None
        guarded = below is not None and below["hi"] == m["lo"] and below["perms"].startswith("---") and not below["path"]
        if guarded and m["perms"].startswith("rw") and abs(m["size"] - _STACK_VM) <= 64 * 1024 and below["size"] <= 64 * 1024:
            out["thread_stacks"] += rss
            out["thread_stack_count"] += 1
            continue
        if m["perms"].startswith("---"):
            continue
        out["anon"] += rss
        size = m["size"]
        bucket = ("<1M" if size < MB else "1M-8M" if size < 8 * MB else "8M-64M" if size < 64 * MB else ">=64M")
        by_size[bucket] += rss
    out = {k: round(v, 1) for k, v in out.items()}
    out["anon_by_mapping_size"] = {k: round(v, 1) for k, v in sorted(by_size.items())}
    return out


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                 "fsmblks", "uordblks", "fordblks", "keepcost")]


def glibc() -> dict[str, float]:
    """glibc's heaps (MB): `arena` bytes from the system in its heaps, `in_use`, `free` inside them, `mmapped`
    blocks (each its own mapping). Empty where glibc or mallinfo2 (2.33+) is missing."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return {}
    fn.restype = _Mallinfo2
    mi = fn()
    return {"arena": round(mi.arena / MB, 1), "in_use": round(mi.uordblks / MB, 1),
            "free": round(mi.fordblks / MB, 1), "mmapped": round(mi.hblkhd / MB, 1), "mmapped_blocks": mi.hblks}


def pymalloc() -> dict[str, float]:
    """Python's small-object allocator (MB): arenas held and the bytes in use in them."""
    # it writes to the C-level stderr: point fd 2 at a file for the call (a log line another thread writes in
    # that instant lands in the file too; a probe is a diagnostic, off by default)
    with tempfile.TemporaryFile("w+") as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read()
    out: dict[str, float] = {}
    for key, pattern in (("arenas", r"# arenas allocated current\s*=\s*([\d,]+)"),
                         ("arena_bytes", r"# bytes in allocated blocks\s*=\s*([\d,]+)"),
                         ("available_bytes", r"# bytes in available blocks\s*=\s*([\d,]+)")):
        m = re.search(pattern, text)
        if m:
            out[key] = int(m.group(1).replace(",", ""))
    m = re.search(r"(\d[\d,]*) arenas \* (\d+) bytes/arena", text)
    if m:
        out["arenas_mb"] = round(int(m.group(1).replace(",", "")) * int(m.group(2)) / MB, 1)
    if "arena_bytes" in out:
        out["in_use_mb"] = round(out.pop("arena_bytes") / MB, 1)
    if "available_bytes" in out:
        out["free_in_pools_mb"] = round(out.pop("available_bytes") / MB, 1)
    return out


_JE_STATS = ("allocated", "active", "resident", "mapped", "retained", "metadata")


def jemalloc() -> dict[str, float]:
    """Arrow's vendored jemalloc's own books (MB), read through `arrow::jemalloc_get_stat` (not exposed by
    pyarrow). Empty where this pyarrow has no jemalloc or the symbol is missing."""
    import pyarrow as pa

    if "jemalloc" not in pa.supported_memory_backends():
        return {}
    try:
        lib = ctypes.CDLL(glob.glob(os.path.join(pa.__path__[0], "libarrow.so.*"))[0])
        fn = lib._ZN5arrow17jemalloc_get_statEPKc  # Result<int64_t> jemalloc_get_stat(const char*)
    except (OSError, IndexError, AttributeError):
        return {}
    fn.restype, fn.argtypes = None, [ctypes.c_void_p, ctypes.c_char_p]
    out = {}
    for name in _JE_STATS:
        res = (ctypes.c_int64 * 4)()  # the Result, returned through a hidden pointer: status (null = OK), value
        fn(ctypes.addressof(res), f"stats.{name}".encode())
        if res[0] == 0:
            out[name] = round(res[1] / MB, 1)
    return out


def jemalloc_setting(name: str) -> int | None:
    """One of Arrow's jemalloc's integer settings (`opt.dirty_decay_ms`, `opt.narenas`), or None where unreadable."""
    import pyarrow as pa

    if "jemalloc" not in pa.supported_memory_backends():
        return None
    try:
        fn = ctypes.CDLL(glob.glob(os.path.join(pa.__path__[0], "libarrow.so.*"))[0])._ZN5arrow17jemalloc_get_statEPKc
    except (OSError, IndexError, AttributeError):
        return None
    fn.restype, fn.argtypes = None, [ctypes.c_void_p, ctypes.c_char_p]
    res = (ctypes.c_int64 * 4)()  # as in jemalloc(): status (null = OK), value
    fn(ctypes.addressof(res), name.encode())
    return int(res[1]) if res[0] == 0 else None


def arrow() -> dict[str, float]:
    import pyarrow as pa

    out = {"pool": pa.default_memory_pool().backend_name, "allocated": round(pa.total_allocated_bytes() / MB, 1)}
    # Arrow code that takes C++'s default pool rather than pyarrow's would allocate from these, unseen above
    for name in ("mimalloc", "system"):
        if name in pa.supported_memory_backends() and name != out["pool"]:
            pool = getattr(pa, f"{name}_memory_pool")()
            out[f"{name}_allocated"], out[f"{name}_peak"] = (round(pool.bytes_allocated() / MB, 1),
                                                            round(pool.max_memory() / MB, 1))
    return out


def threads() -> dict[str, int]:
    """Live Python threads by name (digits folded: `Thread-12 (serve)` and `Thread-13 (serve)` count together)."""
    names = collections.Counter(re.sub(r"\d+", "N", t.name) for t in threading.enumerate())
    return dict(names.most_common())


def snapshot(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every holder's figures at one moment (MB unless named otherwise)."""
    out: dict[str, Any] = {"t": round(time.time(), 1)}
    for name, fn in (("smaps", smaps), ("glibc", glibc), ("pymalloc", pymalloc), ("jemalloc", jemalloc),
                     ("arrow", arrow)):
        try:
            out[name] = fn()
        except Exception as exc:  # noqa: BLE001 - a probe that fails must say so, not stop the process
            out[name] = {"error": str(exc)}
    th = threads()
    out["threads"] = {"total": sum(th.values()), "os": len(os.listdir("/proc/self/task")), "by_name": th}
    out.update(extra or {})
    return out


class Probe:
    """Writes `snapshot()` to a JSON-lines file every `every` seconds, with tracemalloc's growth when `trace`."""

    def __init__(self, path: str, every: float = 60.0, trace: bool = False, extra: Any = None):
        self.path, self.every, self.trace, self.extra = path, every, trace, extra
        self._last_trace = None
        self._last_types: collections.Counter | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        if self.trace:
            import tracemalloc

            tracemalloc.start(int(os.environ.get("MESHSCOPE_MEMORY_PROBE_FRAMES", "6")))
        threading.Thread(target=self._run, name="memory-probe", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.write()
            except Exception as exc:  # noqa: BLE001
                log.warning("memory probe failed: %s", exc)

    def write(self) -> dict[str, Any]:
        extra = {}
        if self.extra is not None:
            try:
                extra = self.extra()
            except Exception as exc:  # noqa: BLE001
                extra = {"extra_error": str(exc)}
        snap = snapshot(extra)
        if self.trace:
            snap["growth"] = self._growth()
            snap["types"] = self._types()
        with open(self.path, "a") as f:
            f.write(json.dumps(snap) + "\n")
        return snap

    def _growth(self) -> list[dict[str, Any]]:
        import tracemalloc

        now = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        out = [{"total_mb": round(sum(s.size for s in now.statistics("filename")) / MB, 1),
                "tracemalloc_own_mb": round(tracemalloc.get_tracemalloc_memory() / MB, 1)}]
        if self._last_trace is not None:
            for st in now.compare_to(self._last_trace, "traceback")[:15]:
                out.append({"kb": round(st.size_diff / 1024), "count": st.count_diff, "size_kb": round(st.size / 1024),
                            "where": [f"{fr.filename.split('site-packages/')[-1]}:{fr.lineno}" for fr in st.traceback][:6]})
        self._last_trace = now
        return out

    def _types(self) -> list[tuple[str, int, int]]:
        counts = collections.Counter(type(o).__name__ for o in gc.get_objects())
        out = []
        if self._last_types is not None:
            diff = counts.copy()
            diff.subtract(self._last_types)
            out = [(name, counts[name], d) for name, d in diff.most_common(15) if d > 0]
        self._last_types = counts
        return out


def from_environment(extra: Any = None) -> Probe | None:
    """The probe `MESHSCOPE_MEMORY_PROBE` asks for, started; None when unset."""
    path = os.environ.get("MESHSCOPE_MEMORY_PROBE")
    if not path:
        return None
    probe = Probe(path, float(os.environ.get("MESHSCOPE_MEMORY_PROBE_EVERY", "60")),
                  os.environ.get("MESHSCOPE_MEMORY_PROBE_TRACE") == "1", extra)
    probe.start()
    return probe
