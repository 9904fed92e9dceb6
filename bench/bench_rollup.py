"""The grouped view's roll-up (`topology.aggregate`) in CPU seconds, this code against a baseline checkout's.

Both run in this one process, alternately, over the same synthetic workload graphs (1,000 / 3,000 / 10,000
workloads, three edges per workload), so the ratio compares like with like whatever else the shared machine
runs. The baseline is `topology/aggregate.py` of the checkout named by BENCH_BASE_CODE (e.g. a
`git worktree add /work/wt cf80926`); without it only this code's figures are printed. Figures: the namespace
view (the first view of a large mesh), the same with one namespace opened, and the app view; least CPU of 5.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import report

SIZES = (1_000, 3_000, 10_000)
REPEAT = 5


def _baseline() -> Callable | None:
    code = os.environ.get("BENCH_BASE_CODE")
    if not code:
        return None
    spec = importlib.util.spec_from_file_location("baseline_aggregate", Path(code) / "topology" / "aggregate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module.aggregate


def main() -> None:
    from dashboard.elements import from_topology
    from topology import build_graph, to_cytoscape
    from topology.aggregate import aggregate
    from topology.synthetic import synthetic_rates

    base = _baseline()
    print(f"# load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; baseline "
          f"{os.environ.get('BENCH_BASE_CODE') or 'none'}", flush=True)
    for size in SIZES:
        rates = synthetic_rates(workloads=size, services=size // 5, edges=3 * size)
        nodes, edges = from_topology(to_cytoscape(build_graph(rates, "workload")))
        for name, level, expand in (("namespace", "namespace", ()), ("namespace_expand1", "namespace", ("agg:ns:ns7",)),
                                    ("app", "app", ())):
            best = {"new": float("inf"), "base": float("inf")}
            for _ in range(REPEAT):  # alternate, so both see the same load
                for which, fn in (("new", aggregate), ("base", base)):
                    if fn is None:
                        continue
                    t0 = time.process_time()
                    fn(nodes, edges, level, expand)
                    best[which] = min(best[which], time.process_time() - t0)
            label = f"rollup_{name}_{size // 1000}k"
            if base:
                report(f"{label}_base", best["base"], "s CPU")
            report(label, best["new"], "s CPU", (f"{label}_base", best["base"]) if base else None)
