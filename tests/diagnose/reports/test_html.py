"""The HTML report: every section, findings ranked by impact, untrusted strings escaped, nothing fetched,
and it actually shows in headless Chromium with the network disabled."""
import re
import shutil
import subprocess

import pytest

from diagnose.reports import render
from diagnose.reports.graph_svg import topology_svg

from tests.diagnose.reports.images import FAILING_RED, color_pixels, ink_share
from tests.diagnose.reports.sample import sample_snapshot

CHROMIUM = "/usr/bin/chromium"
# No proxy that exists and no DNS: any attempt to load something from the network fails.
OFFLINE = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-extensions",
           "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def snapshot():
    return sample_snapshot()


@pytest.fixture(scope="module")
def html(snapshot):
    return render(snapshot, "html").decode()


def test_has_every_section_and_the_window(html, snapshot):
    for section in ("summary", "topology", "findings", "slos", "inventory"):
        assert f'<section id="{section}">' in html
    assert "2026-11-20 23:13:20 UTC" in html and "(1h)" in html
    assert "ratings-availability" in html and "15.10x" in html
    assert html.count('class="budget-chart"') == len(snapshot.slos)
    for obj in snapshot.inventory:
        assert f"<td>{obj['name']}</td>" in html


def test_every_graph_node_is_listed_worst_first(html, snapshot):
    section = html[html.index('<section id="nodes">'):html.index('<section id="findings">')]
    nodes = [e["data"] for e in snapshot.graph if "source" not in e["data"] and e["data"].get("node_type") != "box"]
    rows = re.findall(r"</i>(\w+)</td><td>(\w+)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>", section)
    assert len(rows) == len(nodes) == snapshot.mesh.services + snapshot.mesh.workloads
    health = [r[0] for r in rows]
    assert health == sorted(health, key=["failing", "degraded", "unknown", "healthy", "idle"].index)
    ratings = next(r for r in rows if r[1] == "service" and r[3] == "ratings")
    assert ratings[0] == "failing" and ratings[4] == "4.95 rps"  # 3.2 ok + 1.75 UC reset, inbound
    assert "evil&lt;script&gt;" in section


def test_findings_are_ranked_by_hurt_traffic_with_evidence_and_remediation(html, snapshot):
    table = html[html.index('<section id="findings">'):html.index('<section id="slos">')]
    order = re.findall(r'<a href="#f\d+">(MS\d{4})</a>', table)
    assert order[:3] == ["MS3002", "MS4001", "MS3010"]  # 1.75 rps, 1.2 rps, 0.3 rps, then config-only findings
    assert sorted(order) == sorted(f["code"] for f in snapshot.findings)
    assert "4bf92f3577b34da6a3ce929d0e0e4736" in table  # sample trace id from the evidence
    assert "Set tls.mode ISTIO_MUTUAL" in table
    assert "<th>destination</th>" in table  # evidence edges as a table


def test_untrusted_strings_are_escaped(html):
    assert "<script>" not in html
    assert "evil&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;|svc" in html


def test_self_contained(html):
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "@import" not in html and not re.search(r"url\((?!#)", html)
    assert "<script" not in html and "<link" not in html
    assert html.count("<svg") >= 3  # topology + two budget charts


def test_big_graph_is_cut_to_the_interesting_nodes():
    els = [{"data": {"id": f"n{i}", "node_type": "workload", "workload": f"w{i}", "health": "Healthy"}} for i in range(400)]
    els[123]["data"]["health"] = "Failure"
    els += [{"data": {"id": f"e{i}", "source": f"n{i}", "target": f"n{i + 1}", "rate": float(i)}} for i in range(399)]
    svg, note = topology_svg(els, max_nodes=50)
    assert "Showing 50 of 400 nodes" in note
    assert svg.count("<circle") == 50 and ">w123<" in svg  # the failing node is kept, with its neighbours
    assert ">w122<" in svg and ">w124<" in svg and ">w398<" in svg  # then the busiest edges
    assert svg.count("<line") >= 45  # chosen by edges: a connected picture, not 50 lone dots


@pytest.mark.browser
def test_opens_offline_in_headless_chromium(tmp_path, html):
    if not shutil.which(CHROMIUM):
        pytest.fail("chromium is required (Debian package chromium)")
    page = tmp_path / "report.html"
    page.write_text(html)
    profile = tmp_path / "profile"
    dom = subprocess.run([CHROMIUM, *OFFLINE, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "MS3002" in dom.stdout and "ratings-availability" in dom.stdout
    shot = tmp_path / "shot.png"
    r = subprocess.run([CHROMIUM, *OFFLINE, f"--user-data-dir={profile}", "--window-size=1200,1600",
                        f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    assert ink_share(shot) > 0.03  # text, tables and the picture, not a blank page
    assert color_pixels(shot, FAILING_RED) > 50  # the failing node/edge of the topology and the error badges
