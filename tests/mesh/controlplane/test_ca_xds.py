"""The mesh CA's certificates and the REST xDS protocol (versions, 304, NACK, per-identity access), without Envoy."""
from __future__ import annotations

import ipaddress
import json
import time

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from mesh.controlplane.bootstrap import XDS_CLIENT_FILE, build_bootstrap, namespace_wasm, xds_client_secret
from mesh.controlplane.ca import MeshCA
from mesh.controlplane.registry import Workload
from mesh.controlplane.xds_rest import Peer, ServerTLS, XdsServer

CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
N1 = "spiffe://cluster.local/ns/bookinfo/sa/one"
P1 = Peer(N1, 0x1001)  # the certificate issued to node n1
LATER = time.time() + 3600


@pytest.fixture(scope="module")
def ca() -> MeshCA:
    return MeshCA()


@pytest.fixture
def xds(ca):
    issued = ca.issue_xds_server()
    server = XdsServer(ServerTLS(issued.cert_pem, issued.key_pem, ca.root_pem))
    server.start()
    yield server
    server.stop()


def test_workload_certificate_is_istio_shaped():
    ca = MeshCA()
    issued = ca.issue("bookinfo", "bookinfo-reviews")
    cert = x509.load_pem_x509_certificate(issued.cert_pem.encode())
    san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert san.critical
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews"]
    assert len(cert.subject) == 0
    root = x509.load_pem_x509_certificate(ca.root_pem.encode())
    cert.verify_directly_issued_by(root)
    assert ca.issue("bookinfo", "bookinfo-reviews").serial != issued.serial  # rotation gives a new cert


def test_control_plane_certificate_names_istiod_and_loopback(ca):
    issued = ca.issue_xds_server()
    cert = x509.load_pem_x509_certificate(issued.cert_pem.encode())
    san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [ca.xds_server_identity]
    assert ca.xds_server_identity == "spiffe://cluster.local/ns/istio-system/sa/istiod"
    assert san.get_values_for_type(x509.DNSName) == ["istiod.istio-system.svc"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.root_pem.encode()))


def test_bootstrap_xds_cluster_is_mutual_tls(ca, tmp_path):
    w = Workload("details-v1", "bookinfo", {"app": "details"}, "bookinfo-details", [9080], stats_port=15090)
    boot = build_bootstrap(w, 15010, tmp_path, ca.root_pem, ca.xds_server_identity)
    xds = next(c for c in boot["static_resources"]["clusters"] if c["name"] == "xds-grpc")
    tls = xds["transport_socket"]["typed_config"]["common_tls_context"]
    sds = tls["tls_certificate_sds_secret_configs"][0]["sds_config"]["path_config_source"]
    assert sds == {"path": str(tmp_path / XDS_CLIENT_FILE), "watched_directory": {"path": str(tmp_path)}}
    assert tls["validation_context"]["trusted_ca"]["inline_string"] == ca.root_pem
    assert tls["validation_context"]["match_typed_subject_alt_names"] == [
        {"san_type": "URI", "matcher": {"exact": ca.xds_server_identity}}]
    assert "PRIVATE KEY" not in json.dumps(boot)  # the key lives in the 0600 file only
    secret = xds_client_secret(ca.issue("bookinfo", "bookinfo-details"))["resources"][0]
    assert secret["name"] == tls["tls_certificate_sds_secret_configs"][0]["name"]
    assert "PRIVATE KEY" in secret["tls_certificate"]["private_key"]["inline_string"]


def _poll(xds: XdsServer, node: str, version: str = "", peer: Peer = P1) -> tuple[int, dict]:
    body = json.dumps({"node": {"id": node}, "version_info": version, "type_url": CDS}).encode()
    status, payload = xds.handle("/v3/discovery:clusters", body, peer)
    return status, json.loads(payload) if payload else {}


def test_a_node_is_served_only_to_a_certificate_issued_to_it(xds):
    xds.set_resources("n1", {CDS: {"a": {"@type": CDS, "name": "a"}}}, N1)
    xds.allow_certificate("n1", P1.serial, LATER)
    xds.set_resources("n2", {CDS: {"b": {"@type": CDS, "name": "b"}}}, N1)  # same service account as n1
    xds.allow_certificate("n2", 0x2002, LATER)
    assert _poll(xds, "n1")[0] == 200
    status, body = _poll(xds, "n1", peer=Peer("spiffe://cluster.local/ns/bookinfo/sa/two", P1.serial))
    assert status == 403 and "resources" not in body and "not served" in body["error"]
    assert _poll(xds, "n1", peer=Peer("", P1.serial))[0] == 403  # a certificate without a SPIFFE id
    assert _poll(xds, "n2")[0] == 403  # same identity, but n1's certificate
    assert _poll(xds, "n2", peer=Peer(N1, 0x2002))[0] == 200
    assert _poll(xds, "n3")[0] == 403  # a node the control plane does not know
    assert xds.denied == 4
    xds.allow_certificate("n1", 0x1002, LATER)  # rotation: the old certificate keeps working until it expires
    assert _poll(xds, "n1")[0] == 200 and _poll(xds, "n1", peer=Peer(N1, 0x1002))[0] == 200
    xds.allow_certificate("n1", 0x1003, time.time() - 1)  # an expired one never does
    assert _poll(xds, "n1", peer=Peer(N1, 0x1003))[0] == 403
    xds.remove_node("n1")
    assert _poll(xds, "n1")[0] == 403
    for bad in (b"[]", b'{"node": "n1"}', b'{"node": {"id": "n1"}, "resource_names": [1]}'):
        xds.set_resources("n1", {CDS: {}}, N1)
        xds.allow_certificate("n1", P1.serial, LATER)
        assert xds.handle("/v3/discovery:clusters", bad, P1)[0] == 400


def test_streams_nobody_polls_any_more_are_not_waited_for(xds):
    xds.set_resources("n1", {CDS: {"a": {"@type": CDS, "name": "a"}}}, N1)
    xds.allow_certificate("n1", P1.serial, LATER)
    v1 = _poll(xds, "n1")[1]["version_info"]
    _poll(xds, "n1", v1)  # ACK
    xds.set_resources("n1", {CDS: {"a": {"@type": CDS, "name": "a", "connect_timeout": "2s"}}}, N1)
    assert not xds.in_sync(["n1"])  # the new version is not applied yet
    assert xds.out_of_sync(["n1", "n2"]) == ["n1", "n2"]  # n1 is behind; n2 never polled (still starting)
    xds.stale_after = -1.0  # as if every client had stopped polling long ago
    assert xds.in_sync(["n1"]) and xds.out_of_sync(["n1"]) == []


def test_rest_xds_versions_304_and_nack_detection(xds):
    xds.set_resources("n1", {CDS: {"a": {"@type": CDS, "name": "a"}}}, N1)
    xds.allow_certificate("n1", P1.serial, LATER)
    status, resp = _poll(xds, "n1")
    assert status == 200 and resp["resources"][0]["name"] == "a"
    v1 = resp["version_info"]
    assert _poll(xds, "n1", v1)[0] == 304  # unchanged: cheap answer
    assert xds.in_sync(["n1"])
    xds.set_resources("n1", {CDS: {"a": {"@type": CDS, "name": "a", "connect_timeout": "1s"}}}, N1)
    status, resp = _poll(xds, "n1", v1)
    assert status == 200 and resp["version_info"] != v1
    assert not xds.in_sync(["n1"])
    # the next poll still reports v1: Envoy rejected the update
    assert _poll(xds, "n1", v1)[0] == 304  # the rejected version is not sent again
    assert [r.version for r in xds.rejections] == [resp["version_info"]]
    assert xds.in_sync(["n1"])  # settled: rejected is a final answer
    assert xds.handle("/v3/discovery:nope", b"{}", P1)[0] == 404
    assert xds.handle("/v3/discovery:clusters", b"{not json", P1)[0] == 400


def test_namespace_wasm_module_is_valid_wasm():
    mod = namespace_wasm()
    assert mod[:8] == b"\x00asm\x01\x00\x00\x00"
    assert b"proxy_abi_version_0_2_1" in mod and b"memory" in mod


def test_a_server_that_never_started_stops_at_once(ca):
    """Stopping after a failed start must not hang (socketserver's shutdown() waits for a serve loop)."""
    import threading

    issued = ca.issue_xds_server()
    server = XdsServer(ServerTLS(issued.cert_pem, issued.key_pem, ca.root_pem))
    done = threading.Event()
    t = threading.Thread(target=lambda: (server.stop(), done.set()), daemon=True)
    t.start()
    assert done.wait(30), "stop() hung on a server that never started"
