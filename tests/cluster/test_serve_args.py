"""The container's `meshscope serve` arguments (deploy/kubernetes/deployment.yaml) are what the CLI accepts."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from meshscope.cli import build_parser

DEPLOYMENT = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "deployment.yaml"


def container() -> dict:
    dep = next(d for d in yaml.safe_load_all(DEPLOYMENT.read_text()) if d and d["kind"] == "Deployment")
    return dep["spec"]["template"]["spec"]["containers"][0]


def test_deployment_args_parse_and_bind_with_a_token(monkeypatch):
    c = container()
    env = {e["name"]: e.get("value", "from-secret") for e in c.get("env", [])}
    # Kubernetes expands $(VAR) in args from the container's env
    args = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in c["args"]]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ns = build_parser().parse_args(args)
    assert ns.command == "serve" and ns.prometheus.startswith("http")
    assert ns.host == "0.0.0.0" and ns.token == "from-secret"  # beyond loopback, so the token must come along
    assert env.get("MESHSCOPE_OTLP_TOKEN") == "from-secret"  # and the OTLP receivers' token (they bind there too)
    ports = {p["containerPort"] for p in c["ports"]}
    assert {ns.port, ns.otlp_port} <= ports
    probe = c["readinessProbe"]["httpGet"]
    assert probe["path"] == "/healthz" and probe["port"] == ns.port


def test_serve_beyond_loopback_refuses_to_start_without_an_otlp_token(tmp_path, monkeypatch, capsys):
    """The OTLP receivers bind --host too: beyond loopback, without their token, serve says so and exits 2."""
    from meshscope import cli, memory

    monkeypatch.setattr(memory, "tune", lambda: {})
    monkeypatch.delenv("MESHSCOPE_OTLP_TOKEN", raising=False)
    base = ["serve", "--prometheus", "http://127.0.0.1:9", "--host", "0.0.0.0", "--token", "ui-token",
            "--data-dir", str(tmp_path / "d")]
    assert cli.main(base) == 2
    assert "--otlp-token-file" in capsys.readouterr().err
    (tmp_path / "empty").write_text("\n")
    assert cli.main([*base, "--otlp-token-file", str(tmp_path / "empty")]) == 2
    assert "empty" in capsys.readouterr().err
    assert cli.main([*base, "--otlp-token-file", str(tmp_path / "missing")]) == 2
    assert "cannot read" in capsys.readouterr().err
    # the explicit opt-out passes the check (it then fails later, on the unreachable Prometheus/cluster, not here)
    parsed = build_parser().parse_args([*base, "--otlp-unauthenticated"])
    assert parsed.otlp_unauthenticated
