"""The REST-xDS server authenticates proxies like istiod: mutual TLS with mesh-CA certificates, one identity each.

Real TLS against the shared mesh's xDS port, with the bootstrap credentials a sidecar
really has on disk, and real Envoys reloading a rotated client certificate.
"""
from __future__ import annotations

import http.client
import json
import ssl
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from mesh.controlplane.bootstrap import XDS_CLIENT_FILE
from mesh.controlplane.ca import MeshCA
from tests.util import wait_until

pytestmark = pytest.mark.e2e

SDS_PATH = "/v3/discovery:secrets"
SDS_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
A, B = "details-v1", "ratings-v1"  # different service accounts, so different identities


def _sds_request(node_id: str) -> bytes:
    # both names in one request: a stream of its own, never one of the sidecar's real SDS streams
    return json.dumps({"node": {"id": node_id}, "version_info": "", "type_url": SDS_TYPE,
                       "resource_names": ["ROOTCA", "default"]}).encode()


def _client(mesh, tmp_path: Path, cert_pem: str | None = None, key_pem: str | None = None,
            root_pem: str | None = None) -> ssl.SSLContext:
    """A TLS client that verifies the server against the mesh root (by its 127.0.0.1 SAN)."""
    ctx = ssl.create_default_context(cadata=root_pem or mesh.ca.root_pem)
    if cert_pem:
        pem = tmp_path / "client.pem"
        pem.write_text(cert_pem + key_pem)
        pem.chmod(0o600)
        ctx.load_cert_chain(pem)
    return ctx


def _post(mesh, ctx: ssl.SSLContext, path: str, body: bytes) -> tuple[int, dict]:
    conn = http.client.HTTPSConnection("127.0.0.1", mesh.xds.port, context=ctx, timeout=15)
    try:
        conn.request("POST", path, body, {"content-type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else {}
    finally:
        conn.close()


def _bootstrap_credentials(mesh, workload: str) -> tuple[str, str]:
    """What a local process would steal: the certificate and key in a sidecar's run directory."""
    secret = json.loads((mesh.credentials_dir(mesh.workload(workload)) / XDS_CLIENT_FILE).read_text())
    tls = secret["resources"][0]["tls_certificate"]
    return tls["certificate_chain"]["inline_string"], tls["private_key"]["inline_string"]


def test_plain_http_to_the_xds_port_gets_no_answer(bundled_mesh):
    before = bundled_mesh.xds.handshake_failures
    conn = http.client.HTTPConnection("127.0.0.1", bundled_mesh.xds.port, timeout=15)
    try:
        with pytest.raises((OSError, http.client.HTTPException)):
            conn.request("POST", SDS_PATH, _sds_request(bundled_mesh.workload(A).node_id))
            conn.getresponse().read()
    finally:
        conn.close()
    wait_until(lambda: bundled_mesh.xds.handshake_failures > before, timeout=30, what="the failed handshake counted")


@pytest.mark.parametrize("who", ["no certificate", "certificate from another CA"])
def test_a_client_without_a_mesh_certificate_is_refused(bundled_mesh, tmp_path, who):
    if who == "no certificate":
        ctx = _client(bundled_mesh, tmp_path)
    else:  # same SPIFFE id as details, signed by a root the mesh does not trust
        forged = MeshCA().issue(bundled_mesh.workload(A).namespace, bundled_mesh.workload(A).service_account)
        ctx = _client(bundled_mesh, tmp_path, forged.cert_pem, forged.key_pem)
    before = bundled_mesh.xds.handshake_failures
    with pytest.raises((OSError, http.client.HTTPException)):  # TLS alert or reset: never an HTTP answer
        _post(bundled_mesh, ctx, SDS_PATH, _sds_request(bundled_mesh.workload(A).node_id))
    wait_until(lambda: bundled_mesh.xds.handshake_failures > before, timeout=30, what="the refused handshake counted")


def test_a_workload_certificate_fetches_its_own_secret_but_not_anothers(bundled_mesh, tmp_path):
    a, b = bundled_mesh.workload(A), bundled_mesh.workload(B)
    assert a.service_account != b.service_account
    ctx = _client(bundled_mesh, tmp_path, *_bootstrap_credentials(bundled_mesh, A))

    status, own = _post(bundled_mesh, ctx, SDS_PATH, _sds_request(a.node_id))
    assert status == 200
    served = {r["name"]: r for r in own["resources"]}
    assert served["default"]["tls_certificate"]["certificate_chain"]["inline_string"] == \
        bundled_mesh.certificate(A).cert_pem

    denied = bundled_mesh.xds.denied
    status, other = _post(bundled_mesh, ctx, SDS_PATH, _sds_request(b.node_id))
    assert status == 403 and "resources" not in other
    assert bundled_mesh.certificate(B).key_pem not in json.dumps(other)
    assert f"(spiffe://cluster.local/ns/bookinfo/sa/{a.service_account})" in other["error"]
    lds = json.dumps({"node": {"id": b.node_id}, "version_info": "",
                      "type_url": "type.googleapis.com/envoy.config.listener.v3.Listener"}).encode()
    assert _post(bundled_mesh, ctx, "/v3/discovery:listeners", lds)[0] == 403  # no config of B either
    assert bundled_mesh.xds.denied == denied + 2


def test_a_shared_service_account_does_not_share_secrets(bundled_mesh, tmp_path):
    """reviews v1 and v2 have one identity, but each sidecar's certificate opens only its own node."""
    v1, v2 = bundled_mesh.workload("reviews-v1"), bundled_mesh.workload("reviews-v2")
    assert v1.service_account == v2.service_account
    ctx = _client(bundled_mesh, tmp_path, *_bootstrap_credentials(bundled_mesh, "reviews-v1"))
    assert _post(bundled_mesh, ctx, SDS_PATH, _sds_request(v1.node_id))[0] == 200
    status, other = _post(bundled_mesh, ctx, SDS_PATH, _sds_request(v2.node_id))
    assert status == 403 and "resources" not in other


def test_credentials_are_private_to_the_sidecar(bundled_mesh):
    for w in bundled_mesh.workloads:
        d = bundled_mesh.credentials_dir(w)
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
        assert stat.S_IMODE((d / XDS_CLIENT_FILE).stat().st_mode) == 0o600, d
    assert stat.S_IMODE(bundled_mesh.run_dir.stat().st_mode) == 0o700
    for boot in bundled_mesh.run_dir.glob("*.bootstrap.json"):
        assert "PRIVATE KEY" not in boot.read_text(), boot  # bootstraps only point at the 0600 file
    # a config dump (admin API, owner only) must not leak the keys either
    status, dump = bundled_mesh.admin(A, "/config_dump?include_eds", timeout=10)
    assert status == 200
    assert "xds-client-cert" in dump and "BEGIN CERTIFICATE" in dump  # the secrets are in the dump ...
    assert "PRIVATE KEY" not in dump  # ... with their keys redacted


def _xds_client_cert_expiry(mesh, workload: str) -> int:
    text = mesh.admin(workload, "/stats?filter=xds-client-cert.expiration")[1]
    line = next(ln for ln in text.splitlines() if "xds-client-cert.expiration_unix_time_seconds" in ln)
    return int(line.rsplit(":", 1)[1])


def test_sidecars_reload_their_rotated_xds_certificate_without_restart(bundled_mesh):
    pids = bundled_mesh.pids()
    try:
        bundled_mesh.rotate_certificates(ttl=timedelta(hours=5))  # an expiry no other test produces
        for w in (A, B, "istio-ingressgateway"):
            want = int(bundled_mesh.certificate(w).not_after.timestamp())
            wait_until(lambda: _xds_client_cert_expiry(bundled_mesh, w) == want, timeout=30,
                       what=f"{w} loaded its rotated xDS client certificate")
        assert _bootstrap_credentials(bundled_mesh, A)[0] == bundled_mesh.certificate(A).cert_pem
    finally:
        bundled_mesh.rotate_certificates()  # back to the configured lifetime
    assert bundled_mesh.pids() == pids
