"""TLS origination without CA (IST0128/0129) and Gateway credentials, with real certificates."""
from __future__ import annotations

import base64
import datetime as dt
import textwrap

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from diagnose import analyze
from diagnose.findings import Finding
from mesh.config import MeshConfig, Snapshot, load_text


def run(text: str) -> list[Finding]:
    loaded = load_text(textwrap.dedent(text), "tls.yaml")
    assert not loaded.problems, loaded.problems
    findings = analyze(Snapshot(loaded.objects, MeshConfig()))
    assert not [f for f in findings if f.code == "MS0099"], "a rule crashed"
    return findings


def of(findings: list[Finding], *codes: str) -> list[tuple[str, str, str | None]]:
    return [(f.code, f.resource.name, f.resource.path) for f in findings if f.code in codes]


# -- DestinationRule caCertificates -------------------------------------------------------------
DR = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: db, namespace: prod}}
spec:
  host: db.example.com
{body}
"""


@pytest.mark.parametrize("body, expected", [
    ("  trafficPolicy: {tls: {mode: SIMPLE}}", [("MS2040", "db", "spec/trafficPolicy/tls/mode")]),
    ("  trafficPolicy: {tls: {mode: MUTUAL, clientCertificate: /c, privateKey: /k}}",
     [("MS2040", "db", "spec/trafficPolicy/tls/mode")]),
    ("  trafficPolicy: {tls: {mode: SIMPLE, caCertificates: /ca.pem}}", []),
    ("  trafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true}}", []),
    ("  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}", []),
    ("  trafficPolicy: {tls: {mode: SIMPLE, credentialName: db-cred}}", [("MS2040", "db", "spec/trafficPolicy/tls/mode")]),
    ("  workloadSelector: {matchLabels: {app: gw}}\n  trafficPolicy: {tls: {mode: SIMPLE, credentialName: db-cred}}", []),
    ("  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 443}\n      tls: {mode: SIMPLE}",
     [("MS2041", "db", "spec/trafficPolicy/portLevelSettings[0]/tls/mode")]),
    ("  subsets:\n  - name: v1\n    labels: {version: v1}\n    trafficPolicy: {tls: {mode: MUTUAL}}",
     [("MS2040", "db", "spec/subsets[0]/trafficPolicy/tls/mode")]),
])
def test_tls_origination_without_ca(body, expected):
    found = run(DR.format(body=body))
    assert of(found, "MS2040", "MS2041") == expected
    for f in found:
        if f.code in ("MS2040", "MS2041"):
            assert f.severity == "warning" and f.category == "security"
            assert "caCertificates" in f.remediation and f.resource.source.startswith("tls.yaml:")


# -- Gateway credentials ------------------------------------------------------------------------
def make_pair(days: int = 365, start_days_ago: int = 1) -> tuple[bytes, bytes, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shop.example.com")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=start_days_ago))
            .not_valid_after(now + dt.timedelta(days=days)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem, key


def secret(name: str, data: dict[str, bytes], ns: str = "istio-system") -> str:
    lines = "".join(f"  {k}: {base64.b64encode(v).decode()}\n" for k, v in data.items())
    return f"---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {ns}}}\ntype: kubernetes.io/tls\ndata:\n{lines}"


def gateway(name: str, credential: str | None, selector: str = "istio: ingressgateway", ns: str = "shop",
            port: int = 443, protocol: str = "HTTPS", mode: str = "SIMPLE") -> str:
    tls = f"    tls: {{mode: {mode}" + (f", credentialName: {credential}" if credential else "") + "}\n"
    return (f"---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: {ns}}}\n"
            f"spec:\n  selector: {{{selector}}}\n  servers:\n  - port: {{number: {port}, name: https, protocol: {protocol}}}\n"
            f"    hosts: ['*.example.com']\n{tls}")


INGRESS_POD = """
---
apiVersion: v1
kind: Pod
metadata: {name: ingress-1, namespace: istio-system, labels: {istio: ingressgateway}}
spec: {containers: [{name: istio-proxy, image: proxyv2}]}
"""


def test_credentials_are_looked_up_where_the_gateway_pods_run_and_validated():
    good_crt, good_key, _ = make_pair()
    old_crt, old_key, _ = make_pair(days=-1, start_days_ago=30)
    other_crt, _, _ = make_pair()
    text = (INGRESS_POD
            + secret("good", {"tls.crt": good_crt, "tls.key": good_key})
            + secret("generic", {"cert": good_crt, "key": good_key})
            + secret("expired", {"tls.crt": old_crt, "tls.key": old_key})
            + secret("mismatch", {"tls.crt": other_crt, "tls.key": good_key})
            + secret("garbage", {"tls.crt": b"not a certificate", "tls.key": good_key})
            + secret("wrong-keys", {"tls.cert": good_crt, "tls.key": good_key})
            + secret("elsewhere", {"tls.crt": good_crt, "tls.key": good_key}, ns="shop")
            + "".join(gateway(n, n) for n in ("good", "generic", "expired", "mismatch", "garbage", "wrong-keys",
                                               "elsewhere", "missing")))
    found = run(text)
    got = sorted((f.code, f.resource.name) for f in found if f.code in ("MS2050", "MS2051", "MS2054"))
    assert got == [("MS2050", "elsewhere"), ("MS2050", "missing"), ("MS2051", "expired"), ("MS2051", "garbage"),
                   ("MS2051", "wrong-keys"), ("MS2054", "mismatch")]
    by_name = {f.resource.name: f for f in found if f.code in ("MS2050", "MS2051", "MS2054")}
    assert "expired on" in by_name["expired"].message
    assert "istio-system" in by_name["missing"].message and "kubectl create -n istio-system" in by_name["missing"].remediation
    assert by_name["missing"].resource.path == "spec/servers[0]/tls/credentialName"
    assert by_name["missing"].equivalents == ["IST0101"] and by_name["expired"].equivalents == ["IST0161"]
    assert [(r.kind, r.name) for r in by_name["expired"].related] == [("Secret", "expired")]


def test_secrets_are_not_judged_when_the_input_has_none():
    assert of(run(INGRESS_POD + gateway("gw", "anything")), "MS2050", "MS2051") == []


def test_duplicate_certificates_are_reported_on_the_wider_selector():
    text = (gateway("wide", "shared") + gateway("narrow", "shared", selector="istio: ingressgateway, tier: edge")
            + gateway("twin-a", "twin") + gateway("twin-b", "twin") + gateway("alone", "alone"))
    found = [f for f in run(text) if f.code == "MS2052"]
    assert sorted(f.resource.name for f in found) == ["twin-a", "twin-b", "wide"]
    wide = next(f for f in found if f.resource.name == "wide")
    assert wide.related[0].name == "narrow" and "credentialName shared" in wide.message
    assert wide.equivalents == ["IST0138"]


def test_tls_servers_without_any_certificate():
    text = (gateway("none", None) + gateway("passthrough", None, mode="PASSTHROUGH", protocol="TLS")
            + gateway("plain", None, port=80, protocol="HTTP").replace("    tls: {mode: SIMPLE}\n", "")
            + gateway("files", None).replace("{mode: SIMPLE}", "{mode: SIMPLE, serverCertificate: /c, privateKey: /k}"))
    assert of(run(text), "MS2053") == [("MS2053", "none", "spec/servers[0]/tls")]


def test_plain_text_servers_with_a_tls_block_terminate_no_tls():
    """The port-80 half of the usual HTTPS pair (`tls: {httpsRedirect: true}`) answers a redirect in plain
    text: it needs no certificate, whatever its tls block says (AliyunContainerService/asm-labs'
    multi-buffer gateway got MS2053 "HTTP, tls.mode SIMPLE has no credentials")."""
    text = (gateway("redirect", None, port=80, protocol="HTTP").replace("{mode: SIMPLE}", "{httpsRedirect: true}")
            + gateway("stray-mode", None, port=8080, protocol="HTTP2")
            + gateway("unset", None, protocol="HTTPS").replace("{mode: SIMPLE}", "{}"))
    assert of(run(text), "MS2053") == [("MS2053", "unset", "spec/servers[0]")]
