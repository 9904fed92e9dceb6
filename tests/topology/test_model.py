"""Node identity rules (Kiali's Id function) and ids."""
import hashlib

from topology import model


def test_unknown_source_is_one_node_per_cluster():
    key, ntype = model.node_key("east", "unknown", "", "unknown", "unknown", "unknown", "unknown", "workload")
    assert (key, ntype) == ("east_unknown_source", "unknown")


def test_request_nobody_served_is_the_namespace_unknown_service():
    key, ntype = model.node_key("east", "bookinfo", "unknown", "unknown", "unknown", "unknown", "unknown", "workload")
    assert (key, ntype) == ("svc_east_bookinfo_unknown", "service")


def test_workload_graph_prefers_workload_then_service():
    assert model.node_key("c", "ns", "reviews", "ns", "reviews-v1", "reviews", "v1", "workload") == ("wl_c_ns_reviews-v1", "workload")
    assert model.node_key("c", "ns", "reviews", "unknown", "unknown", "unknown", "unknown", "workload") == ("svc_c_ns_reviews", "service")


def test_app_graphs_fall_back_to_workload_and_versioned_app_ignores_latest():
    assert model.node_key("c", "ns", "", "ns", "kiali-1", "unknown", "unknown", "app") == ("wl_c_ns_kiali-1", "workload")
    assert model.node_key("c", "ns", "", "ns", "r-v1", "reviews", "v1", "app") == ("app_c_ns_reviews", "app")
    assert model.node_key("c", "ns", "", "ns", "r-v1", "reviews", "v1", "versionedApp") == ("vapp_c_ns_r-v1", "app")
    assert model.node_key("c", "ns", "", "ns", "unknown", "reviews", "v2", "versionedApp") == ("vapp_c_ns_reviews_v2", "app")
    assert model.node_key("c", "ns", "", "ns", "unknown", "gw", "latest", "versionedApp") == ("app_c_ns_gw", "app")


def test_nothing_known_gives_no_node():
    assert model.node_key("c", "ns", "", "ns", "", "", "", "workload") is None


def test_ids_are_sha256_of_the_key():
    assert model.hash_id("wl_c_ns_a") == hashlib.sha256(b"wl_c_ns_a").hexdigest()
    assert model.edge_id("a", "b", "http") == hashlib.sha256(b"a.b.http").hexdigest()
