"""W3C trace propagation through sidecars and apps, exported over OTLP/HTTP."""
from __future__ import annotations

import secrets

import pytest

from tests.mesh.evidence import get
from tests.util import wait_until

pytestmark = pytest.mark.e2e


def test_one_trace_spans_gateway_sidecars_and_apps(bundled_mesh, bundled_mesh_otlp):
    trace_id, root_parent = secrets.token_hex(16), secrets.token_hex(8)
    status, _ = get(bundled_mesh.gateway_url + "/productpage",
                    {"traceparent": f"00-{trace_id}-{root_parent}-01"})
    assert status == 200

    def spans():
        # Each process exports on its own batch timer, so a child can arrive before its parent: wait for the whole
        # trace (every span's parent present, or the client's own span), not just for each service to appear.
        s = [x for x in bundled_mesh_otlp.spans() if x["trace_id"] == trace_id]
        services = {x["service"] for x in s}
        apps = {x["attributes"].get("app") for x in s if x["attributes"].get("component") == "app"}
        ids = {x["span_id"] for x in s} | {root_parent, ""}
        complete = all(x["parent_span_id"] in ids for x in s)
        return s if complete and {"istio-ingressgateway.istio-system", "productpage.bookinfo",
                                  "details.bookinfo"} <= services and {"productpage", "details"} <= apps else None
    got = wait_until(spans, timeout=60, interval=0.25, what="every span of the trace from gateway, sidecars and apps")
    by_id = {s["span_id"]: s for s in got}
    # the productpage app's SERVER span is a child of its sidecar's inbound span
    app = next(s for s in got if s["attributes"].get("app") == "productpage" and s["kind"] == 2)
    parent = by_id.get(app["parent_span_id"])
    assert parent is not None and parent["attributes"].get("component") == "proxy"
    # the app's CLIENT span to details is the parent of productpage's outbound sidecar span
    client = next(s for s in got if s["attributes"].get("component") == "app" and s["kind"] == 3
                  and "details" in s["name"])
    children = [s for s in got if s["parent_span_id"] == client["span_id"]]
    assert children and all(c["attributes"].get("component") == "proxy" for c in children)
    # every span of the request belongs to the one trace the client started
    assert all(s["trace_id"] == trace_id for s in got)
