"""The meshscope process's CPU per thread group, on /metrics: where an idle process's CPU goes.

Why: Python 3.11 does not name OS threads, so `top -H` and `/proc/<pid>/task/*/comm` show every thread as
`python`; the collectors and the diagnoser count their own CPU, but the rest of the process (the bundled
control plane, the demo's traffic generator, the UI server's threads, thread pools) was a guess. This reads
each live thread's utime+stime from `/proc/self/task/<tid>/stat` when /metrics is scraped and labels it with
its Python thread's name, digits folded (`traffic-3` -> `traffic-*`), so a scrape costs a few hundred
microseconds and nothing runs between scrapes. Threads Python did not start (Arrow's and gRPC's pools) are
`(native)`; the CPU of threads that ended is `(exited)` (the process's total minus the live threads'), so
the groups always add up to the process.
"""
from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
_registered = False
_lock = threading.Lock()


def group_of(name: str) -> str:
    """A thread name with its numbers folded, so a pool's threads are one group (`ThreadPoolExecutor-*_*`)."""
    return re.sub(r"\d+", "*", name) or "(unnamed)"


def stat_cpu_seconds(path: str | Path) -> float:
    """utime+stime in seconds from a `/proc/<pid>/stat` or `/proc/<pid>/task/<tid>/stat` file (raises OSError when
    the process or thread is gone). The name field may hold spaces and parentheses: fields are counted after its `)`."""
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def cpu_by_group() -> dict[str, float]:
    """CPU seconds per thread group of this process, `(native)` and `(exited)` included (they sum to the process)."""
    names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    out: dict[str, float] = {}
    live = 0.0
    for tid in os.listdir("/proc/self/task"):
        try:
            seconds = stat_cpu_seconds(f"/proc/self/task/{tid}/stat")
        except (OSError, IndexError, ValueError):  # the thread ended while we read
            continue
        group = group_of(names[int(tid)]) if int(tid) in names else "(native)"
        out[group] = out.get(group, 0.0) + seconds
        live += seconds
    try:
        total = stat_cpu_seconds("/proc/self/stat")
    except (OSError, IndexError, ValueError):
        return out
    out["(exited)"] = max(0.0, total - live)
    return out


class _Collector:
    def collect(self) -> Iterator:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            "meshscope_thread_cpu_seconds",
            "CPU seconds of the meshscope process's live threads per group (Python thread name, digits as *); "
            "(native): threads Python did not start; (exited): threads that ended. A group can fall when its "
            "threads end (their CPU moves to (exited)); the groups sum to the process's CPU.", labels=["thread"])
        for group, seconds in sorted(cpu_by_group().items()):
            family.add_metric([group], seconds)
        yield family


def expose() -> None:
    """Put the per-thread-group CPU on /metrics (the collector package's registry, served by the UI); once."""
    global _registered
    if not Path("/proc/self/task").is_dir():  # not Linux: nothing to read
        return
    with _lock:
        if not _registered:
            from collector.selfmetrics import REGISTRY

            REGISTRY.register(_Collector())
            _registered = True
