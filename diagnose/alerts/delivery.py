"""Sending one HTTP request and deciding what its outcome means for the outbox.

2xx is delivered. Timeouts, connection errors, 408, 429 and 5xx are retried with
exponential backoff (a `Retry-After` is honoured when longer); any other 4xx is a
permanent failure, since repeating a request the receiver rejected cannot help.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

from diagnose.alerts.model import HttpRequest

DELIVERED, RETRY, FAILED = "delivered", "retry", "failed"


@dataclass
class Attempt:
    outcome: str  # delivered | retry | failed
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff


def classify(status: int, body: str = "", retry_after: str | None = None) -> Attempt:
    if 200 <= status < 300:
        return Attempt(DELIVERED, status)
    err = f"HTTP {status}" + (f": {body[:200]}" if body else "")
    if status in (408, 429) or status >= 500:
        return Attempt(RETRY, status, err, _retry_after(retry_after))
    return Attempt(FAILED, status, err)


def send(client: httpx.Client, req: HttpRequest, timeout: float) -> Attempt:
    try:
        resp = client.request(req.method, req.url, content=req.body, headers=req.headers, timeout=timeout)
    except httpx.TimeoutException as exc:
        return Attempt(RETRY, None, f"timeout after {timeout:g}s ({type(exc).__name__})")
    except httpx.HTTPError as exc:
        return Attempt(RETRY, None, f"{type(exc).__name__}: {exc}")
    return classify(resp.status_code, resp.text, resp.headers.get("retry-after"))


def backoff(attempts: int, base: float = 1.0, cap: float = 300.0, rng: random.Random | None = None) -> float:
    """Delay before retry number `attempts` (1-based): base * 2^(n-1), capped, with ±20 % jitter."""
    delay = min(cap, base * (2 ** max(0, attempts - 1)))
    return delay * (rng or random).uniform(0.8, 1.2)
