"""End to end on the shared bundled mesh: a fault scenario -> real telemetry -> live findings -> an alert
webhook delivered, a report in every format that names the fault and its evidence, then a resolved notice.

Runs the composition root's Stack (collectors, live diagnoser, alerts from an alerts file) without the UI;
the report API path is covered by `meshscope report --from` in test_report_command.
"""
import json
import subprocess
from pathlib import Path

import jsonschema
import pytest

from diagnose.reports import build_snapshot, render
from diagnose.reports.json import schema

from tests.diagnose.alerts.sink import Sink
from tests.util import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCENARIO = "mtls-mismatch"
DEMO_SLOS = Path(__file__).resolve().parents[3] / "diagnose" / "slo" / "demo_slos.yaml"


SECRET = "whsec_ZTJlLXRlc3Qtc2VjcmV0LWtleQ=="


@pytest.fixture
def live(bundled_mesh, tmp_path):
    """What `meshscope up --alerts FILE` runs (the composition root's Stack, without the UI) over the
    shared mesh, with an on-call webhook receiver declared in an alerts file."""
    from meshscope.app import BundledBackend, Stack, StackOptions

    sink = Sink(tmp_path, secret=SECRET).start()
    alerts = tmp_path / "alerts.yaml"
    alerts.write_text(f"""receivers:
  - {{name: oncall, url: "{sink.url}", secret: "{SECRET}", group_by: ["..."], group_wait: 0s, group_interval: 1s}}
""")
    options = StackOptions(ui=False, otlp_port=0, data_dir=tmp_path / "stack", diagnose_interval=1.0,
                           slo_paths=[DEMO_SLOS], alerts_config=alerts)
    try:
        stack = Stack(BundledBackend(mesh=bundled_mesh, scrape_interval=1.0), options).start()
        try:
            yield {"store": stack.store, "diagnoser": stack.diagnoser, "sink": sink}
        finally:
            stack.stop()
    finally:
        sink.stop()  # also when the stack failed to start


def test_scenario_reaches_a_webhook_and_every_report_format(bundled_mesh, mesh_scenario, live, tmp_path):
    import topology
    from collector.query import istio_rates

    sink = live["sink"]
    diagnoser = live["diagnoser"]
    scenario = mesh_scenario(SCENARIO)
    runtime_code = next(c for c in scenario.expected_codes if c.startswith("MS3"))

    def open_codes():
        return {f.code for f in diagnoser.findings({"status": "open"})}

    wait_until(lambda: runtime_code in open_codes(), timeout=120, interval=0.5, what=f"{runtime_code} open")
    # the alert reaches the on-call receiver
    wait_until(lambda: any(a["labels"]["code"] == runtime_code for r in sink.delivered() for a in r["body"]["alerts"]),
               timeout=60, what="webhook notification")
    assert all(r["valid_signature"] for r in sink.requests())

    store = live["store"]
    graph = topology.build_graph(istio_rates(store, 30.0), graph_type="versionedApp", snapshot=bundled_mesh.snapshot(),
                                 window_s=30.0)
    findings = diagnoser.findings()
    end = diagnoser.clock()
    snap = build_snapshot(findings, graph=topology.to_cytoscape(graph), slos=diagnoser.slo_status(),
                          config_objects=bundled_mesh.snapshot().objects, window=(end - 30.0, end),
                          source=f"bundled mesh, scenario {SCENARIO}")
    assert snap.mesh.services + snap.mesh.workloads > 0 and snap.mesh.requests_per_second > 0

    doc = json.loads(render(snap, "json"))
    jsonschema.validate(doc, schema(), cls=jsonschema.Draft202012Validator)
    top = next(f for f in doc["findings"] if f["code"] == runtime_code)
    assert top["evidence"] and top["impact"].get("rps", 0) > 0

    html = render(snap, "html").decode()
    md = render(snap, "md").decode()
    for text in (html, md):
        assert runtime_code in text and "productpage" in text and "reviews" in text
        assert f"scenario {SCENARIO}" in text
    assert "UC" in html  # the response flag evidence
    # the SLO section comes from the live SLO engine: every demo SLO with its budget chart
    slo_names = [o["name"] for o in snap.slos]
    assert "reviews-availability" in slo_names
    assert all(name in html and name in md for name in slo_names)
    assert html.count('class="budget-chart"') + html.count("not enough history") == len(slo_names)

    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(render(snap, "pdf"))
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert runtime_code in text and "Findings, ranked by impact" in text

    # the fault is fixed: the finding recovers and the receiver hears it resolved
    bundled_mesh.reset()
    wait_until(lambda: any(a["labels"]["code"] == runtime_code and a["status"] == "resolved"
                           for r in sink.delivered() for a in r["body"]["alerts"]),
               timeout=120, interval=0.5, what="resolved notification")
