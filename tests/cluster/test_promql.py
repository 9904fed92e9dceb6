"""The PromQL real-cluster mode sends, and how answers become the Istio rate frame (no server needed)."""
from __future__ import annotations

import math

import pytest

from collector import schema as s
from collector.query import RATE_COLUMNS
from meshscope.cluster import check_namespaces, matrix_to_rates, range_times, rate_query, vector_to_rates


def test_all_namespaces_is_one_plain_sum():
    q = rate_query("istio_requests_total", 59.6, None)
    assert q.startswith("sum by (reporter,source_workload,") and q.count("sum by") == 1
    assert "rate(istio_requests_total{}[60s])" in q and q.endswith("> 0")
    assert " or " not in q


def test_selected_namespaces_share_one_query_with_kiali_selectors():
    q = rate_query("istio_requests_total", 300, ["bookinfo", "shop"])
    parts = q.split(" or ")
    assert len(parts) == 3  # outbound, inbound, unserved inbound: one query, not one per namespace
    assert 'reporter="source",source_workload_namespace=~"bookinfo|shop"' in parts[0]
    assert 'reporter="destination",destination_workload_namespace=~"bookinfo|shop"' in parts[1]
    assert 'destination_workload="unknown",destination_service=~"^.+\\\\.(bookinfo|shop)\\\\..+$"' in parts[2]
    assert all(p.endswith("> 0") for p in parts)


def test_buckets_keep_le_and_zero_rates_and_group_like_kiali_response_time():
    q = rate_query("istio_request_duration_milliseconds_bucket", 60, ["a"])
    assert ",le)" in q and "> 0" not in q
    by = q[q.index("(") + 1:q.index(")")].split(",")
    assert "response_code" not in by and "source_principal" not in by and "connection_security_policy" not in by
    assert {"reporter", "source_workload", "destination_workload", "destination_service", "request_protocol"} <= set(by)


@pytest.mark.parametrize("bad", ["Bookinfo", "a|b", 'x"y', "-a", "a" * 64, "ns.1"])
def test_namespace_names_are_checked_before_they_reach_a_regex(bad):
    with pytest.raises(ValueError, match="not a Kubernetes namespace"):
        check_namespaces([bad])


def test_vector_result_becomes_rate_rows():
    result = [
        {"metric": {"reporter": "source", "source_workload": "productpage-v1", "destination_service_name": "reviews",
                    "response_code": "200"}, "value": [1795220983.1, "2.5"]},
        {"metric": {"reporter": "destination", "le": "+Inf"}, "value": [1795220983.1, "NaN"]},
        {"metric": {"reporter": "destination", "le": "25"}, "value": [1795220983.1, "0.75"]},
    ]
    df = vector_to_rates(result, "istio_request_duration_milliseconds_bucket")
    assert list(df.columns) == list(RATE_COLUMNS)
    assert len(df) == 2  # NaN rates are dropped
    first = df.iloc[0]
    assert first[s.SOURCE_WORKLOAD] == "productpage-v1" and first[s.DESTINATION_WORKLOAD] == "unknown"
    assert first[s.RATE] == 2.5 and math.isnan(first[s.LE])
    assert df.iloc[1][s.LE] == 25.0 and df.iloc[1][s.METRIC] == "istio_request_duration_milliseconds_bucket"
    assert vector_to_rates([], "istio_requests_total").empty


def test_matrix_result_becomes_one_rate_frame_per_evaluation_time():
    times = range_times(1795220900.0, 1795220960.0, 30.0)
    assert times.tolist() == [1795220900.0, 1795220930.0, 1795220960.0]
    result = [
        {"metric": {"reporter": "source", "source_workload": "productpage-v1", "response_code": "200"},
         "values": [[1795220900.0, "2.5"], [1795220960.001, "3"]]},  # ms jitter still lands on its point
        {"metric": {"reporter": "destination", "le": "+Inf"},
         "values": [[1795220930.0, "NaN"], [1795220960.0, "4"], [1795221990.0, "9"]]},  # NaN dropped, stray time too
    ]
    frames = matrix_to_rates(result, "istio_request_duration_milliseconds_bucket", times)
    assert [len(f) for f in frames] == [1, 0, 2]
    assert all(list(f.columns) == list(RATE_COLUMNS) for f in frames)
    first, last = frames[0].iloc[0], frames[2]
    assert first[s.SOURCE_WORKLOAD] == "productpage-v1" and first[s.RATE] == 2.5 and math.isnan(first[s.LE])
    assert sorted(last[s.RATE]) == [3.0, 4.0] and last[s.LE].isin([math.inf]).sum() == 1
    assert [len(f) for f in matrix_to_rates([], "istio_requests_total", times)] == [0, 0, 0]
    assert range_times(10.0, 5.0, 1.0).size == 0
