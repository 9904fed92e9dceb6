"""A bearer token for the OTLP receivers when they listen beyond loopback.

On 127.0.0.1 (the default) only local processes reach the receivers, as before. Bound to another
address (`meshscope serve --host 0.0.0.0` in a pod), anyone on the network could otherwise send
spans and access-log records: forged 503s, findings and alerts. So a receiver bound beyond
loopback refuses to start without a token, and then answers a request without
`Authorization: Bearer <token>` with 401 (OTLP/gRPC: UNAUTHENTICATED) before reading its body.
Tokens are compared in constant time. OpenTelemetry exporters send the header from their
`headers` setting (`OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20<token>`).
"""
from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from mesh.bearer import bearer_matches

ENV = "MESHSCOPE_OTLP_TOKEN"


class OtlpAccessError(ValueError):
    """A receiver that would take telemetry from the network without a token: refused before it listens."""


def is_loopback(host: str) -> bool:
    """Whether `host` only reaches this machine (an unspecified address, 0.0.0.0 or ::, reaches every interface)."""
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Say plainly, before anything listens, that `host` needs a token."""
    if not is_loopback(host) and not token:
        raise OtlpAccessError(
            f"the OTLP receivers would take telemetry from anyone who reaches {host}; give them a token "
            f"(--otlp-token-file FILE or ${ENV}; senders add 'Authorization: Bearer <token>') or bind to 127.0.0.1")


def load_token(path: str | Path | None = None) -> str | None:
    """The token from `path` (a mounted secret: surrounding whitespace dropped), else from $MESHSCOPE_OTLP_TOKEN.
    Raises OtlpAccessError for an unreadable or empty file (a missing secret must not mean "no token")."""
    if path is not None:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise OtlpAccessError(f"--otlp-token-file {path}: cannot read it ({exc})") from None
        if not token:
            raise OtlpAccessError(f"--otlp-token-file {path}: the file is empty")
        return token
    return os.environ.get(ENV) or None


def authorized(header: str | None, token: str | None) -> bool:
    """Whether an `Authorization` header value carries `token` (always true when no token is set)."""
    if not token:
        return True
    return bool(header) and bearer_matches(header, token)
