"""`meshscope.live_source.LiveSource` over a real `Stack` whose Prometheus is down (as `meshscope serve` can be).

Config comes from real files (the bundled Bookinfo YAML plus the mtls-mismatch objects
written to disk), metrics from a real Prometheus HTTP client pointed at a closed port.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.util import free_port

REPO = Path(__file__).resolve().parents[2]
BOOKINFO = REPO / "mesh" / "demo" / "bookinfo.yaml"


class DownPrometheusBackend:
    """A cluster-like backend: config from files, rates from a Prometheus nobody listens for."""

    name = "cluster (Prometheus down)"

    def __init__(self, snapshot):
        from collector.sources.prom_api import PrometheusClient

        self._snapshot = snapshot
        self.client = PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=2.0)

    def start(self, store, otlp_endpoint, progress) -> None:
        pass

    def stop(self) -> None:
        pass

    def snapshot(self):
        return self._snapshot

    def rates(self, window_s, end=None):
        return self.client.istio_rates(window_s, end)

    def requests(self, start, end):
        return None


def _snapshot(incident_file: Path):
    """Bookinfo with the mtls-mismatch objects replacing their baseline namesakes, as the mesh applies them."""
    from mesh.config import Snapshot, load_paths
    from mesh.scenarios import get

    incident_file.write_text(get("mtls-mismatch").yaml.lstrip("\n"))
    incident = load_paths([incident_file]).objects
    keys = {o.key for o in incident}
    return Snapshot([o for o in load_paths([BOOKINFO]).objects if o.key not in keys] + incident)


@pytest.fixture
def source(tmp_path):
    from meshscope.app import Stack, StackOptions
    from meshscope.live_source import LiveSource

    incident_file = tmp_path / "mtls-mismatch.yaml"
    stack = Stack(DownPrometheusBackend(_snapshot(incident_file)),
                  StackOptions(port=0, otlp_port=0, data_dir=tmp_path / "data", diagnose_interval=3600, ui=False))
    stack.start()
    try:
        stack.diagnoser.evaluate()
        yield LiveSource(stack), incident_file
    finally:
        stack.stop()


def test_findings_survive_a_graph_that_cannot_be_built(source):
    src, _ = source
    from collector.sources.prom_api import PrometheusAPIError

    with pytest.raises(PrometheusAPIError):
        src.graph()  # the precondition: Prometheus really is unreachable
    found = src.findings({"category": "mtls"})
    ms2010 = next(f for f in found if f["code"] == "MS2010")
    assert ms2010["elements"] == []  # no graph, no links; the finding itself is still served
    one = src.finding(ms2010["fingerprint"])
    assert one["code"] == "MS2010" and one["elements"] == []
    marked = {ex["ref"]: [t.strip() for n, t in ex["lines"] if n in ex["highlight"]] for ex in one["yaml_excerpts"]}
    assert marked["DestinationRule bookinfo/reviews"] == ["mode: DISABLE"]
    assert marked["PeerAuthentication bookinfo/reviews-strict"] == ["mode: STRICT"]


def test_finding_excerpts_are_numbered_as_in_the_file(source):
    src, incident_file = source
    fp = next(f["fingerprint"] for f in src.findings({"code": "MS2010"}))
    file_lines = incident_file.read_text().splitlines()
    for ex in src.finding(fp)["yaml_excerpts"]:
        assert all(file_lines[n - 1] == t for n, t in ex["lines"]), ex["ref"]
        assert [file_lines[n - 1].strip() for n in ex["highlight"]] in (["mode: DISABLE"], ["mode: STRICT"])
    incident_file.unlink()  # no file: a dump of the object, still marked
    ex = next(e for e in src.finding(fp)["yaml_excerpts"] if e["ref"] == "DestinationRule bookinfo/reviews")
    assert [t.strip() for n, t in ex["lines"] if n in ex["highlight"]] == ["mode: DISABLE"]


def test_config_objects_mark_the_offending_lines_as_written_in_the_file(source):
    src, incident_file = source
    objects = {(o["kind"], o["name"]): o for o in src.config_objects()}
    dr = objects[("DestinationRule", "reviews")]
    assert "MS2010" in dr["findings"]
    assert dr["source"].startswith(str(incident_file))
    text = dr["yaml"].splitlines()
    assert text[0] == "apiVersion: networking.istio.io/v1"  # the file's own text, from the object's first line
    assert [text[n - 1].strip() for n in dr["highlight"]] == ["mode: DISABLE"]
    assert text[dr["lines"]["spec/host"] - 1].strip() == "host: reviews"
    pa = objects[("PeerAuthentication", "reviews-strict")]
    assert [pa["yaml"].splitlines()[n - 1].strip() for n in pa["highlight"]] == ["mode: STRICT"]
    untouched = objects[("DestinationRule", "details")]
    assert untouched["findings"] == [] and untouched["highlight"] == []
    assert "host: details" in untouched["yaml"]


def test_config_objects_without_a_readable_file_mark_lines_in_a_dump(source):
    src, incident_file = source
    incident_file.unlink()  # e.g. applied through the API, or the file moved since
    dr = next(o for o in src.config_objects() if (o["kind"], o["name"]) == ("DestinationRule", "reviews"))
    text = dr["yaml"].splitlines()
    assert [text[n - 1].strip() for n in dr["highlight"]] == ["mode: DISABLE"]
    assert text[dr["lines"]["spec/host"] - 1].strip() == "host: reviews"
