"""Real shapes Istio writes: special clusters, ambient waypoints, TCP lines with '-' fields, and
unescaped quotes in header fields, in Istio's default text format and the JSON shape.

Lines are rendered from Istio's default text format string (tests/collector/envoy_static.py
ISTIO_TEXT_FORMAT, the operators of meshConfig.accessLogFormat's default), one field at a time,
so every class of line is built the way Envoy builds it."""
from __future__ import annotations

import json
import re

import pytest

from collector import schema as s
from collector.parse.access_log import LogContext, parse_json_log, parse_text_log
from tests.collector.envoy_static import ISTIO_TEXT_FORMAT

CTX = LogContext("sidecar.log", "productpage-v1", "bookinfo", "spiffe://cluster.local/ns/bookinfo/sa/productpage")
PEER = "spiffe://cluster.local/ns/shop/sa/cart"
BASE = {
    "START_TIME": "2026-11-21T01:08:35.741Z", "REQ(:METHOD)": "GET", "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)": "/ok",
    "PROTOCOL": "HTTP/1.1", "RESPONSE_CODE": "200", "RESPONSE_FLAGS": "-", "RESPONSE_CODE_DETAILS": "via_upstream",
    "CONNECTION_TERMINATION_DETAILS": "-", "UPSTREAM_TRANSPORT_FAILURE_REASON": "-", "BYTES_RECEIVED": "0",
    "BYTES_SENT": "2", "DURATION": "3", "RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)": "2", "REQ(X-FORWARDED-FOR)": "-",
    "REQ(USER-AGENT)": "curl/8.5", "REQ(X-REQUEST-ID)": "rid-1", "REQ(:AUTHORITY)": "example.com",
    "UPSTREAM_HOST": "10.0.0.9:80", "UPSTREAM_CLUSTER_RAW": "outbound|80||example.com",
    "UPSTREAM_LOCAL_ADDRESS": "10.0.0.1:4000", "DOWNSTREAM_LOCAL_ADDRESS": "10.0.0.9:80",
    "DOWNSTREAM_REMOTE_ADDRESS": "10.0.0.1:5000", "REQUESTED_SERVER_NAME": "-", "ROUTE_NAME": "allow_any",
}


def text_line(**fields: str) -> str:
    values = dict(BASE, **fields)
    return re.sub(r"%([A-Z_()?:\-]+)%", lambda m: values[m.group(1)], ISTIO_TEXT_FORMAT)


def json_line(**fields) -> str:
    v = dict(BASE, **fields)
    doc = {"start_time": v["START_TIME"], "method": v["REQ(:METHOD)"], "path": v["REQ(X-ENVOY-ORIGINAL-PATH?:PATH)"],
           "protocol": v["PROTOCOL"], "response_code": int(v["RESPONSE_CODE"]), "response_flags": v["RESPONSE_FLAGS"],
           "bytes_received": None if v["BYTES_RECEIVED"] == "-" else int(v["BYTES_RECEIVED"]),
           "bytes_sent": None if v["BYTES_SENT"] == "-" else int(v["BYTES_SENT"]),
           "duration": None if v["DURATION"] == "-" else int(v["DURATION"]),
           "user_agent": v["REQ(USER-AGENT)"], "request_id": v["REQ(X-REQUEST-ID)"], "authority": v["REQ(:AUTHORITY)"],
           "upstream_host": v["UPSTREAM_HOST"], "upstream_cluster": v["UPSTREAM_CLUSTER_RAW"],
           "requested_server_name": v["REQUESTED_SERVER_NAME"], "downstream_peer_uri_san": fields.get("down_san"),
           "upstream_peer_uri_san": fields.get("up_san")}
    return json.dumps(doc) + "\n"


def _one(parse, line: str) -> dict:
    r = parse(line, CTX)
    assert r.errors == [], r.errors
    assert r.table.num_rows == 1
    return r.table.to_pylist()[0]


@pytest.mark.parametrize("parse,render", [(parse_text_log, text_line), (parse_json_log, json_line)])
@pytest.mark.parametrize("cluster", ["PassthroughCluster", "BlackHoleCluster"])
def test_egress_catch_alls_are_their_own_service_reported_by_the_source(parse, render, cluster):
    row = _one(parse, render(UPSTREAM_CLUSTER_RAW=cluster))
    assert row[s.REPORTER] == "source"
    assert (row[s.SOURCE_WORKLOAD], row[s.SOURCE_WORKLOAD_NAMESPACE]) == ("productpage-v1", "bookinfo")
    assert row[s.DESTINATION_SERVICE] == cluster  # one node per catch-all, as Kiali draws them


@pytest.mark.parametrize("parse,render", [(parse_text_log, text_line), (parse_json_log, json_line)])
@pytest.mark.parametrize("cluster", ["InboundPassthroughClusterIpv4", "InboundPassthroughClusterIpv6", "InboundPassthroughCluster"])
def test_inbound_passthrough_is_reported_by_the_destination(parse, render, cluster):
    row = _one(parse, render(UPSTREAM_CLUSTER_RAW=cluster, **({"down_san": PEER} if render is json_line else {})))
    assert row[s.REPORTER] == "destination"
    assert (row[s.DESTINATION_WORKLOAD], row[s.DESTINATION_WORKLOAD_NAMESPACE]) == ("productpage-v1", "bookinfo")
    assert row[s.DESTINATION_SERVICE] == "example.com"  # no SNI: the authority
    if render is json_line:
        assert (row[s.SOURCE_PRINCIPAL], row[s.SOURCE_WORKLOAD_NAMESPACE]) == (PEER, "shop")


@pytest.mark.parametrize("parse,render", [(parse_text_log, text_line), (parse_json_log, json_line)])
def test_waypoint_lines_get_reporter_waypoint_and_the_full_service(parse, render):
    extra = {"down_san": PEER, "up_san": "spiffe://cluster.local/ns/bookinfo/sa/reviews"} if render is json_line else {}
    row = _one(parse, render(UPSTREAM_CLUSTER_RAW="inbound-vip|9080|http|reviews.bookinfo.svc.cluster.local", **extra))
    assert row[s.REPORTER] == "waypoint"
    assert row[s.DESTINATION_SERVICE] == "reviews.bookinfo.svc.cluster.local"
    if extra:
        assert row[s.SOURCE_WORKLOAD_NAMESPACE] == "shop" and row[s.DESTINATION_WORKLOAD_NAMESPACE] == "bookinfo"


@pytest.mark.parametrize("fields", [
    {"DURATION": "-", "RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)": "-"},  # TCP line flushed by a log interval
    {"BYTES_RECEIVED": "-", "BYTES_SENT": "-", "DURATION": "-", "RESPONSE_CODE": "0", "REQ(:METHOD)": "-",
     "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)": "-", "PROTOCOL": "-"},
])
def test_tcp_lines_with_dash_fields_are_kept(fields):
    row = _one(parse_text_log, text_line(**fields))
    assert row[s.DURATION_MS] == 0.0 and row[s.REPORTER] == "source"


@pytest.mark.parametrize("field,value", [
    ("REQ(USER-AGENT)", 'Mozilla/5.0 "quoted" agent'), ("REQ(USER-AGENT)", '"'), ("REQ(USER-AGENT)", 'a" "b'),
    ("REQ(X-FORWARDED-FOR)", '1.2.3.4, "5.6.7.8"'), ("REQ(X-ENVOY-ORIGINAL-PATH?:PATH)", '/search?q="x y"'),
])
def test_unescaped_quotes_in_free_text_fields_do_not_lose_the_line(field, value):
    r = parse_text_log(text_line(**{field: value}) + text_line(**{"REQ(X-REQUEST-ID)": "rid-2"}), CTX)
    assert r.errors == []
    rows = r.table.to_pylist()
    assert [x[s.REQUEST_ID] for x in rows] == ["rid-1", "rid-2"]
    assert rows[0][s.DESTINATION_SERVICE] == "example.com" and rows[0][s.RESPONSE_CODE] == 200
    if field == "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)":
        assert rows[0][s.PATH] == value


@pytest.mark.parametrize("route", ["reviews v2 route", "canary  (10 %)", "say \"hi\" route", "allow_any", "-"])
def test_a_route_name_is_the_rest_of_the_line_spaces_and_quotes_included(route):
    """%ROUTE_NAME% is a VirtualService http[].name, free text Envoy writes as is: a name with spaces (or a quote)
    is read whole, the line is not refused; lines with no route name at all (older formats) still read."""
    row = _one(parse_text_log, text_line(ROUTE_NAME=route))
    assert row[s.ROUTE_NAME] == ("" if route == "-" else route) and row[s.RESPONSE_CODE] == 200 and row[s.DESTINATION_SERVICE] == "example.com"
    many = "".join(text_line(ROUTE_NAME=r, **{"REQ(X-REQUEST-ID)": f"rid-{i}"}) for i, r in enumerate(["a b", "c", "d e f"] * 3))
    r = parse_text_log(many, CTX)
    assert r.errors == [] and r.table.column(s.ROUTE_NAME).to_pylist() == ["a b", "c", "d e f"] * 3
    old_format = text_line().rsplit(" ", 1)[0] + "\n"  # ends after REQUESTED_SERVER_NAME
    assert _one(parse_text_log, old_format)[s.ROUTE_NAME] == ""


@pytest.mark.parametrize("parse,render", [(parse_text_log, text_line), (parse_json_log, json_line)])
@pytest.mark.parametrize("cluster,reporter,service", [
    ("inbound-vip|8000|http|barista.caffeine.svc.cluster.local", "waypoint", "barista.caffeine.svc.cluster.local"),
    ("inbound-vip|8081|http/canary|customers.lab.svc.cluster.local", "waypoint", "customers.lab.svc.cluster.local"),
    ("outbound|9080|v2|reviews.bookinfo.svc.cluster.local", "source", "reviews.bookinfo.svc.cluster.local"),
    ("inbound|9080||", "destination", "example.com"),
    ("PassthroughCluster", "source", "PassthroughCluster"),
])
def test_a_cluster_written_with_istios_stat_delimiter_is_the_cluster(parse, render, cluster, reporter, service):
    """`%UPSTREAM_CLUSTER%` is the cluster's observability name: Istio's alt_stat_name, the name and its `;`
    stat-prefix delimiter (what waypoints write). Read as the cluster itself, for every kind of cluster."""
    plain = _one(parse, render(UPSTREAM_CLUSTER_RAW=cluster))
    stat = _one(parse, render(UPSTREAM_CLUSTER_RAW=cluster + ";"))
    assert (stat[s.REPORTER], stat[s.DESTINATION_SERVICE], stat[s.UPSTREAM_CLUSTER]) == (reporter, service, cluster)
    assert stat == plain


@pytest.mark.parametrize("parse,render", [(parse_text_log, text_line), (parse_json_log, json_line)])
@pytest.mark.parametrize("long,short", [
    ("UpstreamConnectionFailure", "UF"), ("NoHealthyUpstream", "UH"), ("UpstreamOverflow", "UO"),
    ("NoRouteFound", "NR"), ("UpstreamRequestTimeout", "UT"), ("DownstreamConnectionTermination", "DC"),
    ("UpstreamConnectionFailure,UpstreamRetryLimitExceeded", "UF,URX"), ("FaultInjected,DelayInjected", "FI,DI"),
    ("UF,URX", "UF,URX"), ("-", "-"), ("SomeCustomFlag", "SomeCustomFlag"),
])
def test_long_response_flag_names_read_as_the_short_codes(parse, render, long, short):
    """A format written with %RESPONSE_FLAGS_LONG% (Envoy 1.27+) gives the same rows as %RESPONSE_FLAGS%: the
    runtime rules read the short codes."""
    row = _one(parse, render(RESPONSE_FLAGS=long, RESPONSE_CODE="503"))
    assert row[s.RESPONSE_FLAGS] == short
    assert row == _one(parse, render(RESPONSE_FLAGS=short, RESPONSE_CODE="503"))
