"""Small helpers shared by tests: polling with a deadline (never sleep to synchronize) and free ports."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, what: str = "condition") -> T:
    """Call `predicate` until it returns something truthy; return that value or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the thing polled may not be up yet
            last_exc = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)


_GIVEN: set[int] = set()  # ports handed out this session: two picks made before either binds never collide


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, *below* the ephemeral range.

    The caller binds it later (often in another process); a port from bind(0) is an
    ephemeral one, which any outgoing connection of the busy machine may take in the
    meantime. Ports below that range are only taken by listeners asking for them.
    """
    from mesh.controlplane.registry import free_local_port

    return free_local_port(_GIVEN)
