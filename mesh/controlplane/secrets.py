"""SDS secrets per sidecar: its workload certificate (`default`) and the mesh root (`ROOTCA`)."""
from __future__ import annotations

from typing import Any

from mesh.controlplane.ca import IssuedCert
from mesh.controlplane.context import CERT_SECRET, ROOT_SECRET

SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"


def build_secrets(cert: IssuedCert, root_pem: str) -> list[dict[str, Any]]:
    return [
        {"@type": SECRET_TYPE, "name": CERT_SECRET, "tls_certificate": {
            "certificate_chain": {"inline_string": cert.cert_pem},
            "private_key": {"inline_string": cert.key_pem}}},
        {"@type": SECRET_TYPE, "name": ROOT_SECRET, "validation_context": {
            "trusted_ca": {"inline_string": root_pem}}},
    ]
