"""What the large-mesh views cost per refresh at 10,000 workloads / 30,000 edges (issue #17).

The page groups a big graph on every refresh, so grouping must cost less than what a refresh already
pays for the full graph: turning its records into Cytoscape elements (`ui_elements`, the baseline,
measured in the same run). Figures: namespace grouping, the same with one namespace expanded,
app grouping, the incident view over every unhealthy edge (1 hop), and the elements the browser
gets grouped vs expanded.
"""
from __future__ import annotations

import os

from bench.common import best_of, report


def main() -> None:
    from dashboard.elements import from_topology, ui_elements
    from topology import build_graph, to_cytoscape
    from topology.aggregate import aggregate
    from topology.focus import focus
    from topology.synthetic import synthetic_rates

    print(f"# load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    rates = synthetic_rates(workloads=10_000, services=2_000, edges=30_000)
    nodes, edges = from_topology(to_cytoscape(build_graph(rates, "workload")))
    print(f"# {len(nodes)} nodes, {len(edges)} edges", flush=True)
    base = best_of(lambda: ui_elements(nodes, edges), repeat=2)
    report("views_full_elements_10k", base, "s")
    baseline = ("views_full_elements_10k", base)
    report("views_group_namespace_10k", best_of(lambda: aggregate(nodes, edges), repeat=2), "s", baseline)
    report("views_group_namespace_expand1_10k",
           best_of(lambda: aggregate(nodes, edges, expand=["agg:ns:ns7"]), repeat=2), "s", baseline)
    report("views_group_app_10k", best_of(lambda: aggregate(nodes, edges, "app"), repeat=2), "s", baseline)
    report("views_focus_unhealthy_1hop_10k", best_of(lambda: focus(nodes, edges, None, 1), repeat=2), "s", baseline)
    grouped = aggregate(nodes, edges)
    report("views_grouped_elements_10k", len(grouped.nodes) + len(grouped.edges), "elements",
           ("views_full_element_count_10k", len(nodes) + len(edges)))
