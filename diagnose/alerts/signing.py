"""Standard Webhooks signatures (HMAC-SHA256 over `id.timestamp.body`).

Kept apart from the webhook sink so receivers (and tests) can verify with the
same rules the sender signs with, and so the config loader can reject a bad
secret at load time.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

PREFIX = "whsec_"
TOLERANCE_S = 300  # receivers reject timestamps further than this from now


def decode_secret(secret: str) -> bytes:
    """`whsec_<base64>` -> key bytes; a secret without the prefix is used as raw UTF-8."""
    if not secret:
        raise ValueError("secret is empty")
    if secret.startswith(PREFIX):
        try:
            return base64.b64decode(secret[len(PREFIX):], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("secret starts with whsec_ but the rest is not valid base64") from None
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: `v1,<base64 mac>`."""
    mac = hmac.new(decode_secret(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(secret: str, msg_id: str, timestamp: int, body: bytes, header: str, now: float | None = None) -> bool:
    """True when one of the space-separated `v1,` signatures matches and the timestamp is fresh."""
    if now is not None and abs(now - timestamp) > TOLERANCE_S:
        return False
    expected = sign(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(expected, sig) for sig in header.split() if sig.startswith("v1,"))
