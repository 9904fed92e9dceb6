"""Gateway TLS credentials: missing, unusable (parsed and checked for expiry) or shared between gateways.

The Secret named by ``credentialName`` is read by the gateway pods, so it is
looked up in the namespace of the pods the Gateway selects (any namespace,
since gateways are not scoped to their namespace by default). A Gateway that
selects no pod at all is the gateway selector rule's finding, not this one.
Secrets are only judged when the input contains Secrets: files in git rarely
do, and "not found" would then be noise.
"""
from __future__ import annotations

import base64
import binascii
import warnings
from datetime import datetime, timezone
from typing import Any

from diagnose.findings import Finding
from diagnose.rules.config import snapshot_rule as sr
from diagnose.rules.config import tls_fields as tf
from mesh.config import ConfigObject, Snapshot
from mesh.config.workloads import labels_match

CREDENTIAL_MODES = ("SIMPLE", "MUTUAL")
TLS_PROTOCOLS = ("HTTPS", "TLS")


def _servers(gw: ConfigObject) -> list[tuple[int, dict[str, Any]]]:
    servers = gw.spec.get("servers")
    return [(i, s) for i, s in enumerate(servers if isinstance(servers, list) else []) if isinstance(s, dict)]


def _server_label(i: int, server: dict[str, Any]) -> str:
    port = tf.as_dict(server.get("port"))
    name = port.get("name") or port.get("number") or i
    return f"{name} (spec/servers[{i}])"


def gateway_pod_namespace(snap: Snapshot, gw: ConfigObject) -> str | None:
    """Namespace of the first workload the Gateway's selector picks (istiod reads the Secret there)."""
    sel = tf.as_dict(gw.spec.get("selector"))
    sel = {str(k): str(v) for k, v in sel.items()}
    for w in snap.workloads():
        if sel and labels_match(sel, w.labels):
            return w.namespace
    return None


KEY_MISMATCH = "the private key does not belong to the certificate"


def secret_problem(secret: ConfigObject, now: datetime | None = None) -> str | None:
    """Why a TLS Secret cannot serve (bad keys, undecodable, unparsable, expired, key mismatch), or None.

    istioctl stops at expiry; a key that does not match the certificate is
    reported separately (KEY_MISMATCH) since Envoy refuses such a pair too.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    data = secret.raw.get("data")
    data = data if isinstance(data, dict) else {}
    string_data = secret.raw.get("stringData")
    string_data = string_data if isinstance(string_data, dict) else {}
    for cert_key, key_key in (("tls.crt", "tls.key"), ("cert", "key")):
        if (cert_key in data or cert_key in string_data) and (key_key in data or key_key in string_data):
            break
    else:
        present = sorted(set(data) | set(string_data))
        return f"it has keys {present or 'none'}, but needs tls.crt and tls.key (or cert and key)"

    def value(k: str) -> bytes | None:
        if k in string_data:
            return str(string_data[k]).encode()
        try:
            return base64.b64decode(str(data[k]), validate=True)
        except (binascii.Error, ValueError):
            return None

    cert_pem, key_pem = value(cert_key), value(key_key)
    if cert_pem is None or key_pem is None:
        return f"{cert_key if cert_pem is None else key_key} is not valid base64"
    try:
        with warnings.catch_warnings():  # e.g. a non-positive serial: still loadable, not our finding
            warnings.simplefilter("ignore")
            certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        return f"{cert_key} is not a PEM X.509 certificate"
    leaf = certs[0]
    now = now or datetime.now(timezone.utc)
    if leaf.not_valid_after_utc < now:
        return f"the certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}"
    if leaf.not_valid_before_utc > now:
        return f"the certificate is not valid before {leaf.not_valid_before_utc:%Y-%m-%d}"
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return f"{key_key} is not an unencrypted PEM private key"
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if key.public_key().public_bytes(enc, pub) != leaf.public_key().public_bytes(enc, pub):
        return KEY_MISMATCH
    return None


def credentials(snap: Snapshot) -> list[Finding]:
    """IST0101 (credential Secret missing) and IST0161 (Secret unusable) for Gateway servers."""
    if not snap.of_kind("Secret"):
        return []
    out = []
    problems: dict[tuple[str | None, str], str | None] = {}
    for gw in snap.of_kind("Gateway"):
        ns = gateway_pod_namespace(snap, gw)
        if ns is None:
            continue
        for i, server in _servers(gw):
            cred = tf.as_dict(server.get("tls")).get("credentialName")
            if not isinstance(cred, str) or not cred:
                continue
            path = f"spec/servers[{i}]/tls/credentialName"
            secret = snap.find("Secret", ns, cred)
            if secret is None:
                out.append(sr.finding("MS2050", gw, path, server=_server_label(i, server), credential=cred,
                                       namespace=ns))
                continue
            key = (ns, cred)
            if key not in problems:
                problems[key] = secret_problem(secret)
            if problems[key]:
                code = "MS2054" if problems[key] == KEY_MISMATCH else "MS2051"
                out.append(sr.finding(code, gw, path, [sr.ref(secret)], server=_server_label(i, server),
                                       credential=cred, namespace=ns, reason=problems[key]))
    return out


def _certificate(tls: dict[str, Any]) -> str | None:
    if tls.get("credentialName"):
        return f"credentialName {tls['credentialName']}"
    if tls.get("serverCertificate"):
        return f"serverCertificate {tls['serverCertificate']}"
    return None


def duplicate_certificates(snap: Snapshot) -> list[Finding]:
    """IST0138: a Gateway whose selector also covers another Gateway's pods and serves the same certificate.

    As istioctl does, the Gateway with the wider (or equal) selector is the one reported.
    """
    gws = []
    for gw in snap.of_kind("Gateway"):
        sel = {str(k): str(v) for k, v in tf.as_dict(gw.spec.get("selector")).items()}
        certs = {c for _, s in _servers(gw) if (c := _certificate(tf.as_dict(s.get("tls"))))}
        if certs:
            gws.append((gw, sel, certs))
    out = []
    for gw, sel, certs in gws:
        for other, other_sel, other_certs in gws:
            if other is gw or not labels_match(sel, other_sel):
                continue
            shared = sorted(certs & other_certs)
            if shared:
                out.append(sr.finding("MS2052", gw, "spec/servers", [sr.ref(other, "spec/servers")],
                                       certificate=", ".join(shared), other=sr.obj_label(other)))
    return out


def missing_credentials(snap: Snapshot) -> list[Finding]:
    """An HTTPS/TLS server terminating TLS (SIMPLE/MUTUAL) with no certificate configured at all."""
    out = []
    for gw in snap.of_kind("Gateway"):
        for i, server in _servers(gw):
            protocol = str(tf.as_dict(server.get("port")).get("protocol", "")).upper()
            tls = server.get("tls")
            if protocol not in TLS_PROTOCOLS and (protocol or not isinstance(tls, dict)):
                continue  # a plain-text server (an httpsRedirect one too) terminates no TLS, whatever its tls says
            tls = tf.as_dict(tls)
            mode = tf.mode_of(tls.get("mode")) or "SIMPLE"
            if mode not in CREDENTIAL_MODES or tls.get("credentialName") or tls.get("credentialNames"):
                continue
            if tls.get("serverCertificate") and tls.get("privateKey"):
                continue
            out.append(sr.finding("MS2053", gw, f"spec/servers[{i}]/tls" if tls else f"spec/servers[{i}]",
                                   server=_server_label(i, server), protocol=protocol or "?", mode=mode))
    return out


CREDENTIALS = sr.rule(
    "gateway.Credentials",
    "Gateway credentialName Secret missing or unusable (keys, certificate, expiry, key pair)",
    ("Gateway", "Secret", "Workload"), ("MS2050", "MS2051", "MS2054"), credentials)
DUPLICATE_CERTIFICATES = sr.rule(
    "gateway.DuplicateCertificates",
    "Gateways on overlapping workloads serve the same certificate",
    ("Gateway",), ("MS2052",), duplicate_certificates)
TLS_WITHOUT_CREDENTIALS = sr.rule(
    "gateway.TLSWithoutCredentials",
    "HTTPS/TLS Gateway server terminating TLS without any certificate",
    ("Gateway",), ("MS2053",), missing_credentials)
