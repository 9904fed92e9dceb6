"""The meshscope process's CPU per thread group (meshscope.threads): named, folded, and adding up to the process."""
from __future__ import annotations

import threading
import time

from meshscope import threads


def _spin(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(range(1000))


def test_groups_fold_numbers_so_a_pool_is_one_group() -> None:
    assert threads.group_of("traffic-3") == threads.group_of("traffic-12") == "traffic-*"
    assert threads.group_of("ThreadPoolExecutor-0_1") == "ThreadPoolExecutor-*_*"
    assert threads.group_of("scraper") == "scraper"


def test_a_busy_named_thread_is_charged_to_its_group_and_the_groups_add_up_to_the_process() -> None:
    stop = threading.Event()
    workers = [threading.Thread(target=_spin, args=(stop,), name=f"test-spinner-{i}", daemon=True) for i in range(2)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 30
    try:
        while threads.cpu_by_group().get("test-spinner-*", 0.0) < 0.05:  # a few clock ticks of CPU
            assert time.monotonic() < deadline, "the spinners' CPU never showed under their group"
            time.sleep(0.01)
    finally:
        stop.set()
        for w in workers:
            w.join()
    groups = threads.cpu_by_group()  # the spinners ended: their CPU is (exited) now, still in the total
    assert "test-spinner-*" not in groups and groups["(exited)"] >= 0.05
    process = threads.stat_cpu_seconds("/proc/self/stat")
    assert abs(sum(groups.values()) - process) < 0.05  # the groups are the whole process (two reads, a tick apart)


def test_exposed_on_the_registry_served_at_metrics() -> None:
    from collector.selfmetrics import REGISTRY

    threads.expose()
    threads.expose()  # once, however often a stack starts
    assert REGISTRY.get_sample_value("meshscope_thread_cpu_seconds", {"thread": "MainThread"}) is not None
