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
    """The running mesh's control URL and `meshscope up`-style data dir (where the CLI finds the token)."""
    return ["--control", f"http://127.0.0.1:{mesh.control.port}", "--data-dir", str(mesh.data_dir.parent)]


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


def test_apply_of_an_object_defined_twice_warns_and_applies_the_last(bundled_mesh, mesh_config, tmp_path, capsys):
    timed = VS + "    timeout: 3s\n"
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(VS)
    second.write_text(timed)
    assert main(["apply", "-f", str(first), "-f", str(second), *ctl(bundled_mesh)]) == 0
    out = capsys.readouterr().out
    assert f"VirtualService bookinfo/ratings is defined 2 times ({first}:1, {second}:1); the last ({second}:1)" in out
    assert out.count("VirtualService bookinfo/ratings applied") == 1

    def live_timeouts():
        return [o.spec["http"][0].get("timeout") for o in bundled_mesh.objects if o.ref == "VirtualService bookinfo/ratings"]

    assert live_timeouts() == ["3s"]
    # the control API says the same when one body names an object twice
    from mesh.control_api import ControlClient
    client = ControlClient(f"http://127.0.0.1:{bundled_mesh.control.port}", token=bundled_mesh.control_token)
    r = client.apply(timed + "---\n" + VS, "body.yaml")
    assert r["changed"] == ["VirtualService bookinfo/ratings"]
    assert any("VirtualService bookinfo/ratings is defined 2 times (body.yaml:1, body.yaml:17)" in w for w in r["warnings"])
    assert live_timeouts() == [None]


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
    # valid for Istio's API (so it reaches the mesh), but a regex program above Envoy's size limit: Envoy NACKs
    f = tmp_path / "regex.yaml"
    f.write_text(VS.replace("  - route:", "  - match:\n    - uri: {regex: '/ratings/[a-z]{200}'}\n    route:"))
    assert main(["apply", "-f", str(f), *ctl(bundled_mesh), "--force"]) == 1
    out = capsys.readouterr().out
    assert "previous config is still serving" in out
    assert "Envoy rejected the RouteConfiguration update" in out


def test_apply_refuses_api_violations_before_sending_even_with_force(bundled_mesh, mesh_config, tmp_path, capsys):
    f = tmp_path / "timeout.yaml"
    f.write_text(VS.replace("  - route:", "  - timeout: soon\n    route:").replace("weight: 100", "weight: -1"))
    before = [o.ref for o in bundled_mesh.objects]
    assert main(["apply", "-f", str(f), *ctl(bundled_mesh), "--force"]) == 1
    out = capsys.readouterr().out
    assert f"{f}:10 (VirtualService ratings): spec.http[0].timeout:" in out and "invalid duration 'soon'" in out
    assert f"{f}:15 (VirtualService ratings): spec.http[0].route[0].weight: weight -1 < 0" in out
    assert [o.ref for o in bundled_mesh.objects] == before


def test_apply_without_a_running_mesh_says_so(tmp_path, capsys):
    f = tmp_path / "vs.yaml"
    f.write_text(VS)
    assert main(["apply", "-f", str(f), "--control", f"http://127.0.0.1:{free_port()}"]) == 1
    assert "no bundled mesh answers" in capsys.readouterr().out


def _url(mesh) -> list[str]:
    return ["--control", f"http://127.0.0.1:{mesh.control.port}"]


def _one_line_error(out: str, err: str) -> str:
    assert "Traceback" not in out + err
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out
    return lines[0]


def test_the_cli_finds_the_token_meshscope_up_writes(bundled_mesh, mesh_config, tmp_path, monkeypatch, capsys):
    """With no flags, the CLI reads .meshscope/mesh/control.token (where `meshscope up` writes it) from the cwd."""
    monkeypatch.delenv("MESHSCOPE_CONTROL_TOKEN", raising=False)
    token_file = tmp_path / ".meshscope" / "mesh" / "control.token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text(bundled_mesh.control_token_path.read_text())
    monkeypatch.chdir(tmp_path)
    f = tmp_path / "ratings-vs.yaml"
    f.write_text(VS)
    assert main(["apply", "-f", str(f), *_url(bundled_mesh)]) == 0
    assert "VirtualService bookinfo/ratings applied" in capsys.readouterr().out
    assert main(["delete", "-f", str(f), *_url(bundled_mesh)]) == 0
    assert "VirtualService bookinfo/ratings deleted" in capsys.readouterr().out


def test_token_from_the_environment_and_the_flag(bundled_mesh, mesh_config, tmp_path, monkeypatch, capsys):
    empty = ["--data-dir", str(tmp_path)]  # no token file there
    monkeypatch.setenv("MESHSCOPE_CONTROL_TOKEN", bundled_mesh.control_token)
    assert main(["scenario", "apply", "fault-abort", *_url(bundled_mesh), *empty]) == 0
    assert bundled_mesh.scenario == "fault-abort"
    monkeypatch.delenv("MESHSCOPE_CONTROL_TOKEN")
    assert main(["scenario", "clear", *_url(bundled_mesh), *empty, "--token", bundled_mesh.control_token]) == 0
    assert bundled_mesh.scenario is None
    capsys.readouterr()
    monkeypatch.setenv("MESHSCOPE_CONTROL_TOKEN", "stale")  # --token wins over the environment
    assert main(["scenario", "apply", "fault-abort", *_url(bundled_mesh), *empty,
                 "--token", bundled_mesh.control_token]) == 0
    assert bundled_mesh.scenario == "fault-abort"


def test_a_wrong_or_missing_token_is_one_clear_line(bundled_mesh, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MESHSCOPE_CONTROL_TOKEN", raising=False)
    f = tmp_path / "vs.yaml"
    f.write_text(VS)
    before = [o.ref for o in bundled_mesh.objects]
    assert main(["apply", "-f", str(f), *_url(bundled_mesh), "--token", "wrong"]) == 1
    line = _one_line_error(*capsys.readouterr())
    assert line.startswith("meshscope apply: ") and "refused the control token (401)" in line
    assert main(["scenario", "clear", *_url(bundled_mesh), "--data-dir", str(tmp_path)]) == 1
    line = _one_line_error(*capsys.readouterr())
    assert f"no control token at {tmp_path / 'mesh' / 'control.token'}" in line and "--token" in line
    assert main(["delete", "-f", str(f), *_url(bundled_mesh), "--data-dir", str(tmp_path)]) == 1
    assert "no control token at" in _one_line_error(*capsys.readouterr())
    assert [o.ref for o in bundled_mesh.objects] == before
    assert main(["scenario", "list", *_url(bundled_mesh), "--token", "wrong"]) == 0  # listing needs no mesh
    assert "mtls-mismatch" in capsys.readouterr().out
