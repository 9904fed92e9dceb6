"""The mesh CA's certificates and the REST xDS protocol (versions, 304, NACK), without Envoy."""
from __future__ import annotations

import json

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from mesh.controlplane.bootstrap import namespace_wasm
from mesh.controlplane.ca import MeshCA
from mesh.controlplane.xds_rest import XdsServer

CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"


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


def _poll(xds: XdsServer, node: str, version: str = "") -> tuple[int, dict]:
    body = json.dumps({"node": {"id": node}, "version_info": version, "type_url": CDS}).encode()
    status, payload = xds.handle("/v3/discovery:clusters", body)
    return status, json.loads(payload) if payload else {}


def test_rest_xds_versions_304_and_nack_detection():
    xds = XdsServer()
    xds.set_resources("n1", {CDS: {"a": {"@type": CDS, "name": "a"}}})
    status, resp = _poll(xds, "n1")
    assert status == 200 and resp["resources"][0]["name"] == "a"
    v1 = resp["version_info"]
    assert _poll(xds, "n1", v1)[0] == 304  # unchanged: cheap answer
    assert xds.in_sync(["n1"])
    xds.set_resources("n1", {CDS: {"a": {"@type": CDS, "name": "a", "connect_timeout": "1s"}}})
    status, resp = _poll(xds, "n1", v1)
    assert status == 200 and resp["version_info"] != v1
    assert not xds.in_sync(["n1"])
    # the next poll still reports v1: Envoy rejected the update
    assert _poll(xds, "n1", v1)[0] == 304  # the rejected version is not sent again
    assert [r.version for r in xds.rejections] == [resp["version_info"]]
    assert xds.in_sync(["n1"])  # settled: rejected is a final answer
    assert xds.handle("/v3/discovery:nope", b"{}")[0] == 404
    assert xds.handle("/v3/discovery:clusters", b"{not json")[0] == 400


def test_namespace_wasm_module_is_valid_wasm():
    mod = namespace_wasm()
    assert mod[:8] == b"\x00asm\x01\x00\x00\x00"
    assert b"proxy_abi_version_0_2_1" in mod and b"memory" in mod
