"""Small helpers shared by tests: polling with a deadline (never sleep to synchronize), free ports, a loopback server
of fixed bodies (a scrape target, a recorded answer)."""
from __future__ import annotations

import http.server
import threading
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


class BodyServer:
    """A real HTTP server on 127.0.0.1 answering each GET with `body_of(path)` (a fixed body, or a function of the path;
    None answers 404), so a scraper or client under test reads it over real HTTP. Use as a context manager or close()."""

    def __init__(self, body_of: bytes | Callable[[str], bytes | None], content_type: str = "text/plain; version=0.0.4"):
        answer = body_of if callable(body_of) else (lambda _path: body_of)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                body = answer(self.path)
                self.send_response(404 if body is None else 200)
                body = b"" if body is None else body
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.address = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.url = f"http://{self.address}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> BodyServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
