"""Report rendering at scale: a 1,000-service mesh with 500 findings (goals: HTML and PDF under 10 s).

The snapshot is synthetic but shaped like the live parts' output: topology's
Cytoscape elements (node_type, rate, Kiali health words), runtime findings with
edge evidence and impact, SLOs with 30 days of budget points, a config inventory.
The JSON render of the same snapshot is the baseline for HTML and Markdown. The PDF
is compared with the way it used to be made (WeasyPrint over the screen HTML, which
takes minutes at 1,000 services, so that comparison runs at 100 services), and its
CPU time is printed too: on a shared box wall time mostly measures the neighbours.
"""
from __future__ import annotations

import random
import time

from bench.common import best_of, report

SERVICES, WORKLOADS_PER_SERVICE, EDGES, FINDINGS, SLOS, NAMESPACES = 1000, 2, 4000, 500, 50, 20


def synthetic_snapshot(seed: int = 11, services: int = SERVICES, findings_n: int = FINDINGS, edges: int = EDGES):
    from diagnose.findings import Finding, ResourceRef
    from diagnose.reports import build_snapshot

    rng = random.Random(seed)
    health = ["Healthy"] * 17 + ["Degraded", "Failure", "NA"]
    els = []
    for s in range(services):
        ns = f"ns{s % NAMESPACES}"
        els.append({"data": {"id": f"svc{s}", "node_type": "service", "namespace": ns, "service": f"svc{s}",
                             "label": f"svc{s}", "health": rng.choice(health)}})
        for v in range(WORKLOADS_PER_SERVICE):
            els.append({"data": {"id": f"wl{s}-{v}", "node_type": "workload", "namespace": ns, "workload": f"svc{s}-v{v + 1}",
                                 "label": f"svc{s}-v{v + 1}", "health": rng.choice(health)}})
            els.append({"data": {"id": f"e-svc{s}-{v}", "source": f"svc{s}", "target": f"wl{s}-{v}", "protocol": "http",
                                 "rate": rng.uniform(0.1, 50), "error_rate": rng.choice([0, 0, 0, 0.02, 0.3]),
                                 "health": rng.choice(health)}})
    for i in range(max(0, edges - services * WORKLOADS_PER_SERVICE)):
        a, b = rng.randrange(services), rng.randrange(services)
        els.append({"data": {"id": f"e{i}", "source": f"wl{a}-{rng.randrange(WORKLOADS_PER_SERVICE)}", "target": f"svc{b}",
                             "protocol": "http", "rate": rng.uniform(0.1, 50), "error_rate": rng.choice([0, 0, 0.01, 0.2]),
                             "health": rng.choice(health)}})
    findings = []
    for i in range(findings_n):
        s = rng.randrange(services)
        ns = f"ns{s % NAMESPACES}"
        findings.append(Finding(
            code=f"MS3{i % 20:03d}", severity=rng.choice(["error", "warning", "info"]), category="runtime",
            message=f"requests from svc{rng.randrange(services)} to svc{s} fail with UF/URX ({i})",
            resource=ResourceRef("DestinationRule", f"svc{s}", ns, "spec/trafficPolicy", f"{ns}/svc{s}.yaml:12"),
            remediation="Raise the connection pool limits or fix the upstream.",
            evidence={"edge_key": f"e{i}", "response_flags": {"UF": rng.randrange(1, 500)}, "response_codes": {"503": 12},
                      "edges": [{"source": f"{ns}/svc{rng.randrange(services)}-v1", "destination": f"svc{s}.{ns}.svc.cluster.local",
                                 "count": 12, "total": 400, "rps": 0.02, "share": 0.03} for _ in range(3)],
                      "sample_trace_ids": [f"{rng.getrandbits(128):032x}" for _ in range(3)]},
            impact={"rps": round(rng.uniform(0, 20), 3), "share": round(rng.random(), 3), "requests": rng.randrange(1, 9999)},
        ))
    now = time.time()
    slos = [{"name": f"svc{i}-availability", "service": f"svc{i}.ns{i % NAMESPACES}", "objective": 0.999,
             "budget_remaining": rng.uniform(-0.2, 1), "burn_rates": {"5m": rng.uniform(0, 20), "1h": rng.uniform(0, 15),
                                                                     "6h": rng.uniform(0, 6), "3d": rng.uniform(0, 2)},
             "alert": rng.choice(["ok", "ok", "ticket", "page"]),
             "budget_series": [[now - 30 * 86400 + h * 3600, 1 - h / 720 * rng.uniform(0, 1.2)] for h in range(0, 720, 6)]}
            for i in range(SLOS)]

    class Obj:  # what inventory_from_objects reads from a ConfigObject
        def __init__(self, kind, ns, name):
            self.kind, self.namespace, self.name, self.source = kind, ns, name, f"{ns}/{name}.yaml:1"

    objects = [Obj(k, f"ns{s % NAMESPACES}", f"svc{s}") for s in range(services) for k in ("Service", "DestinationRule", "VirtualService")]
    return build_snapshot(findings, graph=els, slos=slos, config_objects=objects, window=(now - 3600, now), generated_at=now)


def _timed(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of one call."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def screen_layout_pdf(snap) -> bytes:
    """The PDF as it was made before the print layout: WeasyPrint over the screen HTML (the baseline)."""
    import weasyprint

    from diagnose.reports.html import render_html

    def refuse(url, *a, **k):
        raise ValueError(url)

    return weasyprint.HTML(string=render_html(snap), url_fetcher=refuse).write_pdf()


def main() -> None:
    from diagnose.reports import render

    t0 = time.perf_counter()
    snap = synthetic_snapshot()
    report("report_snapshot_build_1000svc_500findings", time.perf_counter() - t0, "s")
    json_s = best_of(lambda: render(snap, "json"), repeat=2)
    report("report_json_1000svc_500findings", json_s, "s")
    html_s = best_of(lambda: render(snap, "html"), repeat=2)
    report("report_html_1000svc_500findings", html_s, "s", baseline=("json", json_s))
    md_s = best_of(lambda: render(snap, "md"), repeat=2)
    report("report_md_1000svc_500findings", md_s, "s", baseline=("json", json_s))
    size = len(render(snap, "html"))
    report("report_html_size_1000svc_500findings", size / 1e6, "MB")
    # PDF: the print layout against the screen-HTML layout it replaced, same snapshot, same run
    small = synthetic_snapshot(services=100, findings_n=50, edges=400)
    render(synthetic_snapshot(services=3, findings_n=1, edges=6), "pdf")  # imports, fontconfig: once per process
    old_wall, old_cpu = _timed(lambda: screen_layout_pdf(small))
    report("report_pdf_screen_layout_100svc_50findings", old_wall, "s")
    new_wall, new_cpu = _timed(lambda: render(small, "pdf"))
    report("report_pdf_100svc_50findings", new_wall, "s", baseline=("screen layout", old_wall))
    report("report_pdf_100svc_50findings_cpu", new_cpu, "s", baseline=("screen layout", old_cpu))
    big_wall, big_cpu = _timed(lambda: render(snap, "pdf"))
    report("report_pdf_1000svc_500findings", big_wall, "s", baseline=("html", html_s))
    report("report_pdf_1000svc_500findings_cpu", big_cpu, "s")


if __name__ == "__main__":
    main()
