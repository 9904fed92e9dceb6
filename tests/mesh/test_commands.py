"""`meshscope apply/delete/scenario` against the shared mesh's control API (real HTTP, real Envoy)."""
from __future__ import annotations

import pytest

from meshscope.cli import main
from tests.util import free_port

pytestmark = pytest.mark.e2e

VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
  namespace: bookinfo
spec:
  hosts:
  - ratings
  http:
  - route:
    - destination:
        host: ratings
        subset: v1
      weight: 100
"""


def ctl(mesh) -> list[str]:
    return ["--control", f"http://127.0.0.1:{mesh.control.port}"]


def test_scenario_list_names_every_scenario_without_a_mesh(capsys):
    assert main(["scenario", "list", "--control", f"http://127.0.0.1:{free_port()}"]) == 0
    out = capsys.readouterr().out
    for name in ("mtls-mismatch", "missing-subset", "circuit-breaker", "latency-regression"):
        assert name in out
    assert "flags UC" in out and "MS3001" in out


def test_scenario_apply_and_clear(bundled_mesh, mesh_config, capsys):
    assert main(["scenario", "apply", "fault-abort", *ctl(bundled_mesh)]) == 0
    assert bundled_mesh.scenario == "fault-abort"
    out = capsys.readouterr().out
    assert "VirtualService bookinfo/details" in out and "expect FI on productpage-v1 -> details" in out
    assert main(["scenario", "list", *ctl(bundled_mesh)]) == 0
    assert "* fault-abort" in capsys.readouterr().out
    assert main(["scenario", "clear", *ctl(bundled_mesh)]) == 0
    assert bundled_mesh.scenario is None
    assert main(["scenario", "apply", "no-such-thing", *ctl(bundled_mesh)]) == 2


def test_apply_then_delete_a_file(bundled_mesh, mesh_config, tmp_path, capsys):
    f = tmp_path / "ratings-vs.yaml"
    f.write_text(VS)
    assert main(["apply", "-f", str(f), *ctl(bundled_mesh)]) == 0
    out = capsys.readouterr().out
    assert "VirtualService bookinfo/ratings applied" in out and "pushed to every sidecar" in out
    assert any(o.ref == "VirtualService bookinfo/ratings" for o in bundled_mesh.objects)
    assert main(["delete", "-f", str(f), *ctl(bundled_mesh)]) == 0
    assert "VirtualService bookinfo/ratings deleted" in capsys.readouterr().out
    assert not any(o.ref == "VirtualService bookinfo/ratings" for o in bundled_mesh.objects)
    assert main(["delete", "-f", str(f), *ctl(bundled_mesh)]) == 1
    assert "not found" in capsys.readouterr().out


def test_apply_refuses_broken_yaml_with_file_and_line(bundled_mesh, mesh_config, tmp_path, capsys):
    f = tmp_path / "broken.yaml"
    f.write_text(VS + "  - route: [unclosed\n")
    before = [o.ref for o in bundled_mesh.objects]
    assert main(["apply", "-f", str(f), *ctl(bundled_mesh)]) == 1
    out = capsys.readouterr().out
    assert "refused" in out and "broken.yaml:" in out
    assert [o.ref for o in bundled_mesh.objects] == before


def test_apply_refuses_error_findings_in_context(bundled_mesh, mesh_config, tmp_path, capsys):
    f = tmp_path / "subset.yaml"
    f.write_text(VS.replace("subset: v1", "subset: v9"))
    assert main(["apply", "-f", str(f), *ctl(bundled_mesh)]) == 1
    out = capsys.readouterr().out
    assert "MS1002" in out and "VirtualService bookinfo/ratings" in out
    assert not any(o.ref == "VirtualService bookinfo/ratings" for o in bundled_mesh.objects)


def test_apply_reports_what_the_mesh_refuses(bundled_mesh, mesh_config, tmp_path, capsys):
    f = tmp_path / "timeout.yaml"
    f.write_text(VS.replace("  - route:", "  - timeout: soon\n    route:"))
    assert main(["apply", "-f", str(f), *ctl(bundled_mesh), "--force"]) == 1
    out = capsys.readouterr().out
    assert "previous config is still serving" in out
    assert "spec.http[0].timeout: invalid duration 'soon'" in out


def test_apply_without_a_running_mesh_says_so(tmp_path, capsys):
    f = tmp_path / "vs.yaml"
    f.write_text(VS)
    assert main(["apply", "-f", str(f), "--control", f"http://127.0.0.1:{free_port()}"]) == 1
    assert "no bundled mesh answers" in capsys.readouterr().out
