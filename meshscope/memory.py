"""How the long-running commands (`meshscope up`, `meshscope serve`) hold memory: allocator settings (#18).

Why: measured with tracemalloc over `meshscope up --rate 10`, the Python heap is ~130 MB and flat (about half
of it code objects) and Arrow's live allocations 20-190 MB (the telemetry store's in-memory budget plus what a
query reads), yet RSS was 760-1,025 MB and swung by 250 MB between samples. The rest was memory the allocators
kept after it was freed: glibc gives each of the process's ~75 threads' arenas (up to 8 per core) their own free
lists, large buffers freed in the middle of an arena stay resident, and Arrow's default mimalloc pool keeps freed
pages for reuse. So, once at start, before the threads that allocate exist:
- glibc: at most `ARENAS` arenas (the threads mostly wait on I/O and the GIL; 2 cores), and blocks of
  `MMAP_THRESHOLD` or more (Arrow columns, numpy arrays, pandas blocks) mapped on their own so freeing one
  returns it to the system (glibc would otherwise raise this threshold as they are freed, up to 32 MB, and put
  them on the heap);
- Arrow allocates from jemalloc (when this pyarrow has it; else the system malloc), apart from the glibc heaps:
  the store's many small chunk buffers, kept for minutes and evicted oldest first, fragmented those heaps
  for everything allocated between them (Arrow's default mimalloc pool kept freed pages itself). Both of
  Arrow's defaults: pyarrow's pool and C++'s, which the IPC writer and readers take (it was mimalloc, in a
  huge-page region no figure counted: session 9's "unexplained" growth); jemalloc with `ARENAS` arenas and
  purged pages returned at once rather than lazily (`JEMALLOC_CONF`);
- every `TRIM_EVERY_S` a background thread hands free pages inside the heaps back (`malloc_trim`).
Each setting is skipped where it does not apply (not glibc; `ARROW_DEFAULT_MEMORY_POOL`, `JE_ARROW_MALLOC_CONF`
or `MALLOC_ARENA_MAX` set by the user, who then decides). `meshscope/memory_probe.py` shows where RSS sits.
The budget these keep is in docs/bundled-mesh.md ("Memory budget").
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
import threading
import time
from typing import Any

log = logging.getLogger("meshscope.memory")

ARENAS = 2
MMAP_THRESHOLD = 1 << 20  # 1 MiB
TRIM_EVERY_S = 30.0
# Arrow's jemalloc: as many arenas as glibc gets (its default, 4 per core, keeps partly used extents in each), and
# pages it purges handed back at once (MADV_DONTNEED) rather than lazily (MADV_FREE: the kernel takes lazily freed
# pages only under memory pressure, and until then they count in RSS). Freed (dirty) pages are kept for reuse
# DIRTY_DECAY_MS, not Arrow's 1 s: with queries freeing buffers all the time, about a second's worth stayed resident,
# 25-57 MB in `meshscope up` at 10 rps (jemalloc resident minus active); a query-like loop of Arrow allocations kept
# 14-17 MB dirty at 1 s, 3-4 MB at 100 ms, for 1.2x its CPU (0.57 -> 0.70 s), at 0 ms 2-4 MB for 1.5x (#18)
DIRTY_DECAY_MS = 100
JEMALLOC_CONF = f"narenas:{ARENAS},dirty_decay_ms:{DIRTY_DECAY_MS},muzzy_decay_ms:0"
_M_MMAP_THRESHOLD = -3  # glibc mallopt parameters (malloc.h)
_M_ARENA_MAX = -8

_tuned: dict[str, Any] = {}
_lock = threading.Lock()


def _libc() -> Any | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc only: AttributeError elsewhere (musl, macOS)
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
        return libc
    except (OSError, AttributeError):
        return None


def tune() -> dict[str, Any]:
    """Apply the settings once per process (idempotent); returns what was applied, for logs and tests."""
    with _lock:
        if _tuned:
            return dict(_tuned)
        libc = _libc()
        if libc is not None:
            if "MALLOC_ARENA_MAX" not in os.environ:
                _tuned["arena_max"] = bool(libc.mallopt(_M_ARENA_MAX, ARENAS)) and ARENAS
            if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
                _tuned["mmap_threshold"] = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and MMAP_THRESHOLD
        if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
            if "JE_ARROW_MALLOC_CONF" not in os.environ:
                # read by Arrow's jemalloc at its first allocation (after this, before any Arrow buffer exists)
                os.environ["JE_ARROW_MALLOC_CONF"] = JEMALLOC_CONF
                _tuned["jemalloc_conf"] = JEMALLOC_CONF
            # C++'s own default pool as well, which Arrow reads once, when pyarrow is imported: Arrow code that
            # takes it rather than pyarrow's (the IPC writer behind every write-ahead record of the store, its
            # readers) otherwise allocated from mimalloc, out of every figure here, in a 1 GiB region madvised
            # for huge pages whose resident part only grew (measured in `meshscope up`, #18)
            cxx_default = "pyarrow" not in sys.modules
            if cxx_default:
                os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "jemalloc"
            import pyarrow as pa

            # jemalloc where this pyarrow has it: the store's chunks and the queries' buffers then live apart from
            # Python's and the interpreter's mallocs and do not fragment the glibc heaps (measured beside the system
            # pool, same run, 10 rps: RSS end 555 vs 846 MB, slope minus the store 34 vs 67 MB/min)
            pool = pa.jemalloc_memory_pool() if "jemalloc" in pa.supported_memory_backends() else pa.system_memory_pool()
            pa.set_memory_pool(pool)
            _tuned["arrow_pool"] = pa.default_memory_pool().backend_name
            if cxx_default and pool.backend_name != "jemalloc":  # this pyarrow has no jemalloc: leave C++ its own
                os.environ.pop("ARROW_DEFAULT_MEMORY_POOL", None)
            _tuned["cxx_default_pool"] = cxx_default and pool.backend_name == "jemalloc"
        if libc is not None:
            threading.Thread(target=_trim_loop, args=(libc,), name="malloc-trim", daemon=True).start()
            _tuned["trim_every_s"] = TRIM_EVERY_S
        _tuned.setdefault("applied", True)
        log.debug("allocator settings: %s", _tuned)
        return dict(_tuned)


def _trim_loop(libc: Any) -> None:
    while True:
        time.sleep(TRIM_EVERY_S)  # a period, not synchronisation
        libc.malloc_trim(0)


def probe_from_environment(stack: Any = None) -> Any:
    """Start the memory probe `MESHSCOPE_MEMORY_PROBE` asks for (meshscope/memory_probe.py), if any; its lines
    carry the telemetry store's own bytes beside the allocators' books."""
    from meshscope import memory_probe

    return memory_probe.from_environment(lambda: stack_figures(stack))


def stack_figures(stack: Any) -> dict[str, Any]:
    """The running stack's own figures for a probe line: the store's bytes, and what waits to be stored, in memory
    (the OTLP receivers' queues) and on disk (access-log lines not read yet): the holders to look at when RSS peaks
    while the process gets too little CPU (#18)."""
    out: dict[str, Any] = {}
    if (store := getattr(stack, "store", None)) is not None:
        out["store_mb"] = round(store.nbytes / 2**20, 1)
    queues = {}
    if (otlp := getattr(stack, "otlp", None)) is not None:
        queues["otlp_http_pending_mb"] = round(otlp.admission.pending_bytes / 2**20, 3)
    if (grpc := getattr(stack, "otlp_grpc", None)) is not None:
        queues["otlp_grpc_pending_mb"] = round(grpc.pending_bytes / 2**20, 3)
    if (tailer := getattr(getattr(stack, "backend", None), "tailer", None)) is not None:
        queues["access_log_backlog_mb"] = round(tailer.backlog_bytes() / 2**20, 3)
    if queues:
        out["queues"] = queues
    return out
