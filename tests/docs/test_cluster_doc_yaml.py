"""Every YAML block of docs/cluster.md is something a user can paste: it parses, its objects load and pass
meshscope's own analyze, and the access-log labels it tells Istio to send are exactly the names the OTel
access-log decoder reads (doc and code cannot drift apart).

Istio's MeshConfig is not a CRD, so the `extensionProviders` blocks are checked against the fields of
Istio's `MeshConfig.ExtensionProvider` messages used there (`envoyOtelAls`: service, port, logName,
logFormat{text, labels}; `opentelemetry`: service, port, ...), written down here from istio/api's
mesh/v1alpha1/config.proto.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from collector.parse import otel_access_log as otel
from diagnose.analysis import analyze
from mesh.config.loader import load_text
from mesh.config.snapshot import Snapshot

DOC = Path(__file__).resolve().parents[2] / "docs" / "cluster.md"
# Istio's ExtensionProvider kinds and the fields of the two this page configures
PROVIDER_KINDS = {"envoyHttpAls", "envoyTcpAls", "envoyOtelAls", "envoyFileAccessLog", "envoyExtAuthzHttp",
                  "envoyExtAuthzGrpc", "zipkin", "lightstep", "datadog", "stackdriver", "opencensus", "skywalking",
                  "opentelemetry", "prometheus", "sds"}
OTEL_ALS_FIELDS = {"service", "port", "logName", "logFormat"}
LOG_FORMAT_FIELDS = {"text", "labels"}
OTEL_TRACING_FIELDS = {"service", "port", "maxTagLength", "http", "grpc", "resourceDetectors", "dynatraceSampler"}


def _blocks() -> list[tuple[int, str]]:
    text = DOC.read_text()
    return [(text[:m.start()].count("\n") + 2, m.group(1))
            for m in re.finditer(r"^```ya?ml\n(.*?)^```", text, flags=re.M | re.S)]


def _providers(docs: list) -> list[dict]:
    out = []
    for d in docs:
        if isinstance(d, dict) and "extensionProviders" in d:
            out += d["extensionProviders"]
        elif isinstance(d, dict) and d.get("kind") == "ASMExtensionProvider":
            out.append({"name": d["metadata"]["name"], **d["spec"]})
    return out


def test_every_yaml_block_parses_loads_and_passes_analyze():
    blocks = _blocks()
    assert len(blocks) >= 4, "docs/cluster.md lost its YAML blocks"
    objects = 0
    for line, text in blocks:
        docs = list(yaml.safe_load_all(text))  # raises, naming the block's line, when a block is broken
        assert docs and all(d is not None for d in docs), f"docs/cluster.md:{line}: empty YAML document"
        if not any(isinstance(d, dict) and "kind" in d for d in docs):
            continue
        loaded = load_text(text, f"docs/cluster.md:{line}")
        assert not loaded.problems, [(p.line, p.message) for p in loaded.problems]
        objects += len(loaded.objects)
        bad = [(f.code, f.message) for f in analyze(Snapshot(loaded.objects), problems=loaded.problems)
               if f.severity != "info"]  # info: a kind meshscope does not model (ASMExtensionProvider)
        assert not bad, (line, bad)
    assert objects >= 3  # the Telemetry, the ASM providers, the RBAC role at least


def test_provider_stanzas_use_only_istios_fields():
    providers = [p for _, text in _blocks() for p in _providers(list(yaml.safe_load_all(text)))]
    names = {p["name"] for p in providers}
    assert {"meshscope-als", "meshscope-tracing"} <= names
    for p in providers:
        kinds = set(p) - {"name"}
        assert len(kinds) == 1 and kinds <= PROVIDER_KINDS, p
        (kind,) = kinds
        spec = p[kind]
        assert isinstance(spec.get("service"), str) and isinstance(spec.get("port"), int), p
        if kind == "envoyOtelAls":
            assert set(spec) <= OTEL_ALS_FIELDS, set(spec) - OTEL_ALS_FIELDS
            assert set(spec.get("logFormat") or {}) <= LOG_FORMAT_FIELDS
            assert spec["port"] == 4317  # meshscope's OTLP/gRPC receiver
        if kind == "opentelemetry":
            assert set(spec) <= OTEL_TRACING_FIELDS, set(spec) - OTEL_TRACING_FIELDS


def test_the_documented_labels_are_the_names_the_decoder_reads():
    labels = {}
    for _, text in _blocks():
        for p in _providers(list(yaml.safe_load_all(text))):
            labels.update(((p.get("envoyOtelAls") or {}).get("logFormat") or {}).get("labels") or {})
    read = set(otel.STRING_FIELDS) | set(otel.NUMBER_FIELDS)
    # every access-log field the decoder reads is asked for, and every label asked for is read
    assert read <= set(labels), read - set(labels)
    identity = set(otel.WORKLOAD_KEYS) | set(otel.NAMESPACE_KEYS) | set(otel.SERVICE_ACCOUNT_KEYS)
    assert set(labels) - read <= identity, set(labels) - read - identity
    assert {"workload", "namespace", "service_account"} <= set(labels)
    for name, value in labels.items():  # Envoy command operators, as Envoy spells them
        assert re.fullmatch(r"%[A-Z_]+(\([^)]*\))?%", value), (name, value)
