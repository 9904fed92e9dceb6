"""Protobuf wire-format pieces for tests that build OTLP bodies by hand (hostile or edge-case bytes)."""
from __future__ import annotations


def varint(n: int) -> bytes:
    """`n` as a base-128 varint, least significant group first."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)
