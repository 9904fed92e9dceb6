"""The mesh certificate authority: SPIFFE X.509 identities for every sidecar.

Istio's istiod signs short-lived workload certificates whose only identity is a
URI SAN `spiffe://<trust-domain>/ns/<ns>/sa/<sa>` (empty subject). Peers verify
each other against the root and match on that SAN, so the CA here issues exactly
that shape. Keys are ECDSA P-256, as istio-agent generates by default.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import threading
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


XDS_SERVER_NAMESPACE = "istio-system"  # where istiod's identity lives in Istio; the REST-xDS server uses it
XDS_SERVER_ACCOUNT = "istiod"
XDS_SERVER_DNS = "istiod.istio-system.svc"


def spiffe_id(namespace: str, service_account: str, trust_domain: str = "cluster.local") -> str:
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


@dataclass(frozen=True)
class IssuedCert:
    """A workload certificate chain and key, PEM-encoded, as SDS serves them."""

    identity: str
    cert_pem: str
    key_pem: str
    serial: int
    not_before: dt.datetime
    not_after: dt.datetime


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


class MeshCA:
    """A self-signed root that issues workload certificates; thread-safe."""

    def __init__(self, trust_domain: str = "cluster.local", root_ttl: dt.timedelta = dt.timedelta(days=365)):
        self.trust_domain = trust_domain
        self._lock = threading.Lock()
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain)])
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + root_ttl)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.root_pem = self._cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def xds_server_identity(self) -> str:
        return spiffe_id(XDS_SERVER_NAMESPACE, XDS_SERVER_ACCOUNT, self.trust_domain)

    def issue_xds_server(self, ttl: dt.timedelta = dt.timedelta(hours=24)) -> IssuedCert:
        """The control plane's serving certificate: istiod's SPIFFE id, plus a DNS name and 127.0.0.1
        so ordinary TLS clients (tests, curl) can verify it by host name too."""
        return self.issue(XDS_SERVER_NAMESPACE, XDS_SERVER_ACCOUNT, ttl, dns_names=(XDS_SERVER_DNS,),
                          ip_addresses=("127.0.0.1",))

    def issue(self, namespace: str, service_account: str, ttl: dt.timedelta = dt.timedelta(hours=24),
              dns_names: tuple[str, ...] = (), ip_addresses: tuple[str, ...] = ()) -> IssuedCert:
        """Sign a fresh key for `spiffe://<td>/ns/<namespace>/sa/<service_account>`."""
        identity = spiffe_id(namespace, service_account, self.trust_domain)
        sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity)]
        sans += [x509.DNSName(d) for d in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + ttl)
            .add_extension(x509.SubjectAlternativeName(sans), critical=True)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, content_commitment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
        )
        with self._lock:
            signed = cert.sign(self._key, hashes.SHA256())
        return IssuedCert(identity, signed.public_bytes(serialization.Encoding.PEM).decode(), _pem_key(key),
                          serial, now - dt.timedelta(minutes=1), now + ttl)
