"""`meshscope slo export` from the CLI, as a user types it: ASM objects or the PrometheusRule, problems named."""
from __future__ import annotations

import yaml

from meshscope.cli import main
from tests.diagnose.asm.test_asm_slo import ASM

OWN = """\
apiVersion: meshscope.io/v1alpha1
kind: ServiceLevelObjective
metadata: {name: reviews-latency, namespace: bookinfo}
spec: {service: reviews, sli: {type: latency, thresholdMs: 250}, objective: 99.5, period: 28d}
"""


def test_export_meshscope_slo_as_asm_object(tmp_path, capsys):
    (tmp_path / "slo.yaml").write_text(OWN)
    assert main(["slo", "export", str(tmp_path / "slo.yaml")]) == 0
    out, err = capsys.readouterr()
    (doc,) = list(yaml.safe_load_all(out))
    assert doc["kind"] == "ServiceLevelObjective" and doc["apiVersion"] == "istio.alibabacloud.com/v1"
    assert doc["spec"]["period"] == "28d" and doc["spec"]["slos"][0]["sli"]["plugin"]["options"] == {"threshold": "250ms"}
    assert err == ""


def test_export_asm_file_as_prometheusrule_names_bad_entries(tmp_path, capsys):
    (tmp_path / "asm.yaml").write_text(ASM)
    assert main(["slo", "export", str(tmp_path / "asm.yaml"), "--to", "asm-prometheusrule"]) == 1  # 2 bad entries
    out, err = capsys.readouterr()
    (rule,) = list(yaml.safe_load_all(out))
    assert rule["kind"] == "PrometheusRule" and len(rule["spec"]["groups"]) == 2  # promql (filter) SLO skipped
    assert "asm.yaml:" in err and "spec/slos[3]/objective" in err and "skipped" in err
