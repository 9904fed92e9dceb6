"""Reports lead with incidents: one row per cause, before the ranked findings, in Markdown and HTML."""
from diagnose.reports import render
from diagnose.reports.build import build_snapshot
from tests.diagnose.runtime.tables import fqdn, requests, table
from tests.diagnose.test_incidents import findings


def test_markdown_and_html_lead_with_the_incident_and_its_cause():
    found = findings(table(requests("productpage-v1", fqdn("reviews"), "mtls_plaintext", 30),
                           requests("reviews-v1", fqdn("reviews"), "listener_tls", 30, reporter="destination")), "mtls")
    snap = build_snapshot(found, generated_at=1_795_000_100.0)
    md = render(snap, "md").decode()
    assert md.index("## Incidents (1)") < md.index("## Findings, ranked by impact")
    row = next(line for line in md.splitlines() if line.startswith("| 1 |") and "MS3001" in line)
    assert "DestinationRule bookinfo/reviews-plain" in row and "config MS2010" in row and "bookinfo.yaml:" in row
    html = render(snap, "html").decode()
    assert html.index('id="incidents"') < html.index('id="findings"')
    assert "DestinationRule bookinfo/reviews-plain" in html[html.index('id="incidents"'):html.index('id="findings"')]
