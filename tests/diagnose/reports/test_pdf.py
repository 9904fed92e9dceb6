"""The PDF report: WeasyPrint from the same HTML, turned into PNG pages with pdftoppm and read back with pdftotext."""
import shutil
import subprocess

import pytest

from diagnose.reports import render

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
