"""The PDF report: WeasyPrint from the same HTML, turned into PNG pages with pdftoppm and read back with pdftotext."""
import shutil
import subprocess

import pytest

from diagnose.reports import render
from diagnose.reports.view import ranked_findings

from tests.diagnose.reports.images import FAILING_RED, color_pixels, ink_share
from tests.diagnose.reports.sample import sample_snapshot


@pytest.fixture(scope="module")
def pdf(tmp_path_factory):
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    path.write_bytes(render(sample_snapshot(), "pdf"))
    return path


def test_is_a_pdf_with_the_report_text(pdf):
    assert pdf.read_bytes().startswith(b"%PDF-")
    if not shutil.which("pdftotext"):
        pytest.fail("pdftotext is required (Debian package poppler-utils)")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    for needle in ("Mesh summary", "Topology", "Findings, ranked by impact", "SLO status", "Config inventory",
                   "MS3002", "ratings-availability", "Set tls.mode ISTIO_MUTUAL", "bookinfo.yaml:28"):
        assert needle in text, needle
    assert "evil<script>" in text  # shown as text, not swallowed as markup
    assert text.index("MS3002") < text.index("MS4001")  # ranked by impact in the PDF too


def test_pages_render_non_blank_with_the_topology_picture(pdf, tmp_path):
    if not shutil.which("pdftoppm"):
        pytest.fail("pdftoppm is required (Debian package poppler-utils)")
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2
    assert all(ink_share(p) > 0.01 for p in pages)
    assert color_pixels(pages[0], FAILING_RED) > 10  # the failing part of the graph and the error badges are drawn


def test_sections_and_unhealthy_services_are_listed(pdf, tmp_path):
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Services and workloads (12)" in text
    rows = [tuple(line.split()[:4]) for line in text.splitlines()]
    assert ("failing", "service", "bookinfo", "ratings") in rows  # 35 % 5xx
    health = [r[0] for r in rows if len(r) == 4 and r[1] in ("service", "app")]
    assert len(health) == 12 and health.index("failing") < health.index("degraded") < health.index("healthy")


@pytest.mark.slow
def test_a_1000_service_report_keeps_every_finding_service_slo_and_object(tmp_path):
    """The PDF is laid out cheaply (text tables), not cut: at bench scale every row is still in it."""
    from bench.bench_report import synthetic_snapshot

    snap = synthetic_snapshot(services=1000, findings_n=500, edges=4000)
    path = tmp_path / "big.pdf"
    path.write_bytes(render(snap, "pdf"))
    layout = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    flowing = " ".join(subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout.split())

    for f in snap.findings:  # each finding's block: its message (wrapped anywhere) and remediation
        assert " ".join(f["message"].split()) in flowing, f["message"]
    assert flowing.count("Remediation: Raise the connection pool limits") == len(snap.findings)
    summary = {tuple(line.split()[:3]) for line in layout.splitlines()}
    assert {(str(i), f["severity"], f["code"]) for i, f in enumerate(ranked_findings(snap), 1)} <= summary

    node_rows = {tuple(line.split()[:4]) for line in layout.splitlines()}
    nodes = [e["data"] for e in snap.graph if "source" not in e["data"]]
    assert len(nodes) == 3000
    expected = {(n["node_type"], n["namespace"], n["label"]) for n in nodes}
    assert expected <= {r[1:4] for r in node_rows}, "every service and workload has its row"

    for o in snap.slos:
        assert o["name"] in flowing
    assert {(o["kind"], o["namespace"], o["name"], o["source"]) for o in snap.inventory} <= node_rows
