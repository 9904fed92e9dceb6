"""The control plane on the running mesh: live pushes, refused config, mTLS enforcement, rotation, supervision."""
from __future__ import annotations

import http.client
import os
import re
import signal
import ssl
import time

import pytest

from mesh.bundled import ConfigRejected
from mesh.config import load_text
from tests.mesh.evidence import get
from tests.util import wait_until

pytestmark = pytest.mark.e2e


def objects(text: str):
    res = load_text(text, "test.yaml")
    assert not res.problems, res.problems
    return res.objects


REVIEWS_V3 = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v3}
"""


def served_versions(mesh, n: int) -> set[str]:
    out = set()
    for _ in range(n):
        status, body = get(mesh.gateway_url + "/productpage")
        assert status == 200
        out.add(re.search(r"reviews served by (reviews-v\d)", body).group(1))
    return out


def all_versions_serve(mesh, expected: set[str], timeout: float = 30) -> None:
    """Keep requesting until every expected version has answered, failing at once on any other version.

    The default load balancer picks endpoints at random (least request among two random choices), so a
    fixed number of requests misses one of three versions now and then: 12 requests miss one about 2 % of runs.
    """
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while seen != expected:
        assert time.monotonic() < deadline, f"after {timeout}s only {sorted(seen)} of {sorted(expected)} served"
        seen |= served_versions(mesh, 3)
        assert seen <= expected, f"unexpected versions served: {sorted(seen - expected)}"


def test_push_reaches_every_sidecar_without_restart(bundled_mesh, mesh_config):
    """Push speed is measured in `bench mesh`; here: the push returns once every sidecar applied it."""
    pids = bundled_mesh.pids()
    for subset in ("v1", "v3"):
        result = bundled_mesh.apply(objects(REVIEWS_V3.replace("subset: v3", f"subset: {subset}")))
        assert result.changed == ["VirtualService bookinfo/reviews"]
        assert result.in_sync, result.warnings  # every sidecar confirmed before apply returned
        assert served_versions(bundled_mesh, 6) == {f"reviews-{subset}"}  # the very next requests see it
    assert bundled_mesh.pids() == pids  # no process was restarted
    bundled_mesh.reset()
    all_versions_serve(bundled_mesh, {"reviews-v1", "reviews-v2", "reviews-v3"})


def test_invalid_config_is_refused_and_the_old_config_keeps_serving(bundled_mesh, mesh_config):
    bundled_mesh.apply(objects(REVIEWS_V3))
    before = [o.ref for o in bundled_mesh.objects]
    bad = objects(REVIEWS_V3.replace("  - route:", "  - timeout: soon\n    route:"))
    with pytest.raises(ConfigRejected) as exc:
        bundled_mesh.apply(bad)
    assert "VirtualService bookinfo/reviews spec.http[0].timeout" in str(exc.value)
    assert "invalid duration 'soon'" in str(exc.value)
    assert [o.ref for o in bundled_mesh.objects] == before
    assert served_versions(bundled_mesh, 5) == {"reviews-v3"}


def test_envoy_nack_rolls_back_with_envoys_message(bundled_mesh, mesh_config):
    bundled_mesh.apply(objects(REVIEWS_V3))
    # a valid RE2 regex Istio accepts, but its compiled program is larger than Envoy's default limit (100):
    # only Envoy can tell, and it NACKs the route update
    bad = objects(REVIEWS_V3.replace("  - route:", "  - match:\n    - uri: {regex: '/reviews/[a-z]{200}'}\n    route:"))
    t0 = time.monotonic()
    with pytest.raises(ConfigRejected) as exc:
        bundled_mesh.apply(bad)
    assert time.monotonic() - t0 < 3
    msg = str(exc.value)
    assert "Envoy rejected the RouteConfiguration update" in msg and "productpage-v1" in msg
    assert served_versions(bundled_mesh, 5) == {"reviews-v3"}
    # the rejected version is not pushed again: the sidecars are in sync with the restored config
    assert bundled_mesh.xds.in_sync([w.node_id for w in bundled_mesh.workloads])


def _client_context(mesh, tmp_path, sa: str = "sleep") -> ssl.SSLContext:
    cert = mesh.ca.issue("bookinfo", sa)
    (tmp_path / "c.pem").write_text(cert.cert_pem)
    (tmp_path / "k.pem").write_text(cert.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # workload certs carry only a SPIFFE URI SAN
    ctx.load_verify_locations(cadata=mesh.ca.root_pem)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    return ctx


def _plaintext(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/details/1", headers={"host": "details:9080"})
        return conn.getresponse().status
    finally:
        conn.close()


def _mtls(port: int, ctx: ssl.SSLContext) -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    try:
        conn.request("GET", "/details/1", headers={"host": "details:9080"})
        status = conn.getresponse().status
        return status, conn.sock.getpeercert(binary_form=True)
    finally:
        conn.close()


def test_strict_rejects_plaintext_and_accepts_mtls(bundled_mesh, mesh_config, tmp_path):
    port = bundled_mesh.workload("details-v1").inbound_ports[9080]
    assert _plaintext(port) == 200  # PERMISSIVE by default
    bundled_mesh.apply(objects("""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: details-strict, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: details}}
  mtls: {mode: STRICT}
"""))

    def refused():
        try:
            _plaintext(port)
            return False
        except (ConnectionError, http.client.RemoteDisconnected):
            return True
    wait_until(refused, timeout=30, what="plaintext refused under STRICT")
    assert _mtls(port, _client_context(bundled_mesh, tmp_path))[0] == 200
    assert get(bundled_mesh.gateway_url + "/productpage")[0] == 200  # mesh clients use mTLS: unaffected


def test_authorization_policy_allow_only_named_principal(bundled_mesh, mesh_config, tmp_path):
    port = bundled_mesh.workload("details-v1").inbound_ports[9080]
    bundled_mesh.apply(objects("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: details-allow-productpage, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: details}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/bookinfo/sa/bookinfo-productpage]}}]
    to: [{operation: {methods: [GET], paths: ["/details/*"]}}]
"""))
    ctx = _client_context(bundled_mesh, tmp_path, sa="sleep")
    wait_until(lambda: _mtls(port, ctx)[0] == 403, timeout=30, what="ALLOW policy denies other principals")
    ok_ctx = _client_context(bundled_mesh, tmp_path, sa="bookinfo-productpage")
    assert _mtls(port, ok_ctx)[0] == 200
    assert "William Shakespeare" in get(bundled_mesh.gateway_url + "/productpage")[1]


def _quiet_traffic(mesh, quiet_s: float = 2.0) -> dict:
    """The traffic generator's counters once they have not moved for `quiet_s`.

    Errors still arriving from an earlier test's scenario (requests in flight, drained
    connections) must not be blamed on what this test does next.
    """
    state = {"snap": mesh.traffic.snapshot(), "since": time.monotonic()}

    def settled():
        snap = mesh.traffic.snapshot()
        if (snap["errors"], snap["codes"].get(503, 0)) != (state["snap"]["errors"], state["snap"]["codes"].get(503, 0)):
            state.update(snap=snap, since=time.monotonic())
        return time.monotonic() - state["since"] >= quiet_s and state["snap"]

    return wait_until(settled, timeout=60, interval=0.2, what=f"{quiet_s}s of background traffic without errors")


def test_certificate_rotation_keeps_traffic_flowing(bundled_mesh, tmp_path):
    port = bundled_mesh.workload("details-v1").inbound_ports[9080]
    ctx = _client_context(bundled_mesh, tmp_path)
    _, before_der = _mtls(port, ctx)
    errors_before = _quiet_traffic(bundled_mesh)
    bundled_mesh.rotate_certificates()
    new_pem = bundled_mesh.certificate("details-v1").cert_pem
    new_der = ssl.PEM_cert_to_DER_cert(new_pem)
    assert new_der != before_der
    wait_until(lambda: _mtls(port, ctx)[1] == new_der, timeout=30, what="the rotated certificate served over SDS")
    for _ in range(10):
        assert get(bundled_mesh.gateway_url + "/productpage")[0] == 200
    after = bundled_mesh.traffic.snapshot()
    assert after["errors"] == errors_before["errors"]
    assert after["codes"].get(503, 0) == errors_before["codes"].get(503, 0)


def test_supervisor_restarts_a_crashed_sidecar(bundled_mesh):
    name = "bookinfo.ratings-v1"
    pid = bundled_mesh.pids()[name]
    os.kill(pid, signal.SIGKILL)
    new = wait_until(lambda: (p := bundled_mesh.pids().get(name)) and p != pid and p, timeout=60,
                     what="ratings sidecar restarted")
    assert new != pid
    assert bundled_mesh.supervisor.restarts()[name] >= 1
    wait_until(lambda: get(bundled_mesh.stats_url("ratings-v1") + "/ready")[1].strip() == "LIVE", timeout=60,
               what="restarted sidecar LIVE")
    # it got its config back over xDS and serves mTLS traffic again
    wait_until(lambda: "stars" in get(bundled_mesh.gateway_url + "/productpage")[1], timeout=60,
               what="ratings served again")


def test_certificates_rotate_automatically_before_expiry(bundled_mesh):
    """Short-lived certificates are re-issued (with the configured TTL) past half their life, over SDS."""
    from datetime import timedelta

    bundled_mesh.rotate_certificates(ttl=timedelta(seconds=3))
    short = bundled_mesh.certificate("details-v1")
    rotations = bundled_mesh.rotations
    wait_until(lambda: bundled_mesh.rotations > rotations, timeout=60, what="an automatic rotation")
    renewed = bundled_mesh.certificate("details-v1")
    assert renewed.serial != short.serial
    assert renewed.not_after - renewed.not_before == bundled_mesh.config.cert_ttl + timedelta(minutes=1)
    wait_until(lambda: __import__("datetime").datetime.now(short.not_after.tzinfo) > short.not_after, timeout=60,
               what="the short-lived certificates expired")
    # the expired certificates are no longer in use: mTLS between sidecars still works
    for _ in range(5):
        assert get(bundled_mesh.gateway_url + "/productpage")[0] == 200


REVIEWS_V4 = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v4, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: reviews, version: v4}}
  template:
    metadata: {labels: {app: reviews, version: v4}}
    spec:
      serviceAccountName: bookinfo-reviews
      containers: [{name: reviews, image: meshscope/demo-reviews:v4, ports: [{containerPort: 9080}]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v4, labels: {version: v4}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v4}}]
"""


def test_a_new_deployment_gets_a_sidecar_and_traffic_then_goes_away(bundled_mesh, mesh_config):
    result = bundled_mesh.apply(objects(REVIEWS_V4))
    assert "Deployment bookinfo/reviews-v4" in result.changed
    assert "bookinfo.reviews-v4" in bundled_mesh.pids()
    wait_until(lambda: served_versions(bundled_mesh, 3) == {"reviews-v4"}, timeout=60,
               what="traffic reaching the new workload")
    pid = bundled_mesh.pids()["bookinfo.reviews-v4"]
    bundled_mesh.reset()
    assert "bookinfo.reviews-v4" not in bundled_mesh.pids()
    wait_until(lambda: not os.path.exists(f"/proc/{pid}") or
               open(f"/proc/{pid}/stat").read().split()[2] == "Z", timeout=30, what="reviews-v4 sidecar stopped")
    all_versions_serve(bundled_mesh, {"reviews-v1", "reviews-v2", "reviews-v3"})


def test_header_match_routes_one_user_to_a_version(bundled_mesh, mesh_config):
    bundled_mesh.apply(objects("""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
"""))
    # productpage forwards Bookinfo's end-user header, so the route applies on the inner hop
    for _ in range(5):
        assert "reviews served by reviews-v2" in get(bundled_mesh.gateway_url + "/productpage", {"end-user": "jason"})[1]
    assert served_versions(bundled_mesh, 5) == {"reviews-v1"}


def test_crashed_demo_apps_come_back_with_the_scenario_behavior(bundled_mesh, mesh_scenario):
    mesh_scenario("latency-regression")
    pid = bundled_mesh.pids()["demo-apps"]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: bundled_mesh.pids().get("demo-apps", pid) != pid, timeout=60, what="demo apps restarted")
    wait_until(lambda: _behavior(bundled_mesh, "details-v1")["extra_latency_ms"] == 250, timeout=60,
               what="the scenario's latency re-injected into the restarted app")
    assert get(bundled_mesh.gateway_url + "/productpage")[0] == 200


def _behavior(mesh, workload: str) -> dict:
    import json
    import urllib.request
    port = next(iter(mesh.workload(workload).app_ports.values()))
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_meshscope/behavior", timeout=2) as r:
        return json.loads(r.read())


def _server_cert(host: str) -> tuple[str, str]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def test_https_gateway_terminates_tls_with_the_credential_secret(bundled_mesh, mesh_config, tmp_path):
    import base64
    cert, key = _server_cert("bookinfo.example.com")
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    result = bundled_mesh.apply(objects(f"""
apiVersion: v1
kind: Secret
metadata: {{name: bookinfo-credential, namespace: istio-system}}
type: kubernetes.io/tls
data: {{tls.crt: {b64(cert)}, tls.key: {b64(key)}}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: bookinfo-gateway, namespace: bookinfo}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 8080, name: http, protocol: HTTP}}
    hosts: ["*"]
  - port: {{number: 443, name: https, protocol: HTTPS}}
    tls: {{mode: SIMPLE, credentialName: bookinfo-credential}}
    hosts: [bookinfo.example.com]
"""))
    assert not result.warnings
    port = bundled_mesh.registry.gateway_ports[443]
    (tmp_path / "ca.pem").write_text(cert)
    ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    conn.sock = ctx.wrap_socket(__import__("socket").create_connection(("127.0.0.1", port), timeout=10),
                                server_hostname="bookinfo.example.com")  # SNI and hostname check
    conn.request("GET", "/productpage", headers={"host": "bookinfo.example.com"})
    resp = conn.getresponse()
    assert resp.status == 200 and "The Comedy of Errors" in resp.read().decode()
    conn.close()
    assert get(bundled_mesh.gateway_url + "/productpage")[0] == 200  # the HTTP server still serves
    # a credential that does not exist: the HTTPS server is skipped with a warning, never served in plaintext
    result = bundled_mesh.apply(objects("""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway, namespace: bookinfo}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 443, name: https, protocol: HTTPS}
    tls: {mode: SIMPLE, credentialName: missing-credential}
    hosts: [bookinfo.example.com]
"""))
    assert any("Secret istio-system/missing-credential not found" in w for w in result.warnings)

    def closed():
        try:
            __import__("socket").create_connection(("127.0.0.1", port), timeout=2).close()
            return False
        except OSError:
            return True
    wait_until(closed, timeout=60, what="the HTTPS listener removed")


def test_kinds_the_mesh_does_not_enforce_are_kept_with_a_warning(bundled_mesh, mesh_config):
    result = bundled_mesh.apply(objects("""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: payments-api, namespace: bookinfo}
spec:
  hosts: [api.payments.example]
  ports: [{number: 443, name: https, protocol: TLS}]
  location: MESH_EXTERNAL
  resolution: DNS
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: bookinfo}
spec:
  jwtRules: [{issuer: "https://issuer.example"}]
"""))
    assert sorted(result.changed) == ["RequestAuthentication bookinfo/jwt", "ServiceEntry bookinfo/payments-api"]
    said = [w for w in result.warnings if "not enforced by the bundled mesh" in w]
    assert len(said) == 2
    assert any(w.startswith("ServiceEntry bookinfo/payments-api") and "egress" in w for w in said)
    assert any(w.startswith("RequestAuthentication bookinfo/jwt") and "JWTs are not validated" in w for w in said)
    assert {"ServiceEntry bookinfo/payments-api", "RequestAuthentication bookinfo/jwt"} <= {o.ref for o in bundled_mesh.objects}
    assert set(said) <= set(bundled_mesh.status()["warnings"])
    assert served_versions(bundled_mesh, 3) <= {"reviews-v1", "reviews-v2", "reviews-v3"}  # traffic as before
