"""The OTLP/HTTP receiver in a browser's reach: a web page cannot export telemetry, nor grow /metrics.

A page the operator opens can POST to 127.0.0.1:4318 with `fetch(..., {mode: "no-cors"})`; an
ArrayBuffer or untyped Blob body carries no content type, which the receiver reads as protobuf.
Before the receiver refused browser requests, such a page stored forged spans and access-log
records (fake 503s, findings, alerts). The receiver's metric labels come from a closed set, so
requests to made-up paths cannot add series to meshscope's own /metrics.
"""
from __future__ import annotations

import json
import time

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector import selfmetrics
from collector.sources.otlp import OtlpReceiver
from collector.store import TelemetryStore
from tests.util import BodyServer, wait_until


def _traces() -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    attr = rs.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", "forged.bookinfo"
    span = rs.scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = bytes(range(1, 17)), bytes(range(1, 9)), "GET /forged"
    span.start_time_unix_nano = int(time.time() * 1e9)
    span.end_time_unix_nano = span.start_time_unix_nano + 1_000_000
    return req.SerializeToString()


def _logs() -> bytes:
    req = ExportLogsServiceRequest()
    rec = req.resource_logs.add().scope_logs.add().log_records.add()
    rec.time_unix_nano = int(time.time() * 1e9)
    rec.body.string_value = "forged"
    return req.SerializeToString()


# every way a page can send bytes without a CORS preflight: typed arrays and Blobs (no content type) and
# a text/plain string, to both signals
ATTACK = """<!doctype html><html><body><script>
window.results = [];
const bodies = {{traces: new Uint8Array({traces}), logs: new Uint8Array({logs})}};
for (const signal of ["traces", "logs"]) {{
  const url = "{rx}/v1/" + signal;
  for (const [label, body] of [["array", bodies[signal]], ["blob", new Blob([bodies[signal]])],
                               ["buffer", bodies[signal].buffer], ["text", "x"]]) {{
    fetch(url, {{method: "POST", mode: "no-cors", body: body}})
      .then(r => window.results.push(signal + ":" + label + ":" + r.type))
      .catch(e => window.results.push(signal + ":" + label + ":error"));
  }}
}}
</script></body></html>"""


@pytest.fixture
def receiver():
    store = TelemetryStore()
    with OtlpReceiver(store, port=0) as rx:
        yield rx


@pytest.fixture
def attack_page():
    """A server on another origin (another port, as any site could be) serving the attack page."""
    pages: dict[str, bytes] = {}

    server = BodyServer(pages.get, content_type="text/html")

    def serve(rx_url: str) -> str:
        pages["/otlp.html"] = ATTACK.format(rx=rx_url, traces=json.dumps(list(_traces())),
                                            logs=json.dumps(list(_logs()))).encode()
        return f"{server.url}/otlp.html"
    yield serve
    server.close()


@pytest.mark.browser
def test_a_web_page_cannot_export_telemetry(browser, receiver, attack_page):
    browser.get(attack_page(receiver.endpoint))
    # each fetch settles only once the receiver has answered it
    wait_until(lambda: len(browser.execute_script("return window.results") or []) >= 8, 30, what="the exports ran")
    assert receiver.spans_received == 0 and receiver.logs_received == 0
    assert receiver.store.row_count("spans") == 0 and receiver.store.row_count("logs") == 0

    # the same bytes from a real sender (no browser headers) are stored: the refusal is about the sender
    r = httpx.post(receiver.endpoint + "/v1/traces", content=_traces(),
                   headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code == 200 and receiver.spans_received == 1


@pytest.mark.parametrize("headers", [{"Origin": "null"}, {"Origin": "http://127.0.0.1:1"},
                                     {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Mode": "no-cors"}])
def test_browser_headers_are_refused_before_the_body_is_read(receiver, headers):
    r = httpx.post(receiver.endpoint + "/v1/logs", content=_logs(), headers=headers)
    assert r.status_code == 403 and receiver.logs_received == 0


def test_made_up_paths_add_no_metric_series(receiver):
    for i in range(20):
        assert httpx.post(f"{receiver.endpoint}/v1/made-up-{i}", content=b"x").status_code == 404
    signals = {s.labels["signal"] for m in selfmetrics.OTLP_REQUESTS.collect() for s in m.samples}
    assert signals <= {"traces", "logs", "unknown"}, signals
