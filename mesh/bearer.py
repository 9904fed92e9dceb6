"""`Authorization: Bearer <token>` checked in constant time: one reading for every server that takes a token."""
from __future__ import annotations

import hmac


def bearer_matches(header: str | None, token: str | bytes) -> bool:
    """Whether an `Authorization` header value carries `token` (scheme case-insensitive, as RFC 7235 says)."""
    scheme, _, value = (header or "").strip().partition(" ")
    expected = token.encode() if isinstance(token, str) else token
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), expected)
