"""Serving the app: bind checks, a production WSGI server with deadlines and caps, and a handle to stop it.

The UI/API runs on waitress, chosen by measurement (`bench/bench_ui_server.py`): it
reads requests in one event loop and hands only complete requests to its worker
threads, so a client that sends its headers or body slowly (slowloris) holds a
socket, not a thread. Werkzeug's development server (one thread per connection,
no read deadline) and cheroot (a worker per connection while it reads headers)
both stopped answering under 300 half-open connections. On top of waitress:

- a deadline for a whole request to arrive (headers and body), not only for idle
  gaps, so trickling one byte at a time does not keep a connection forever;
- a cap on open connections; past it a new client gets an immediate `503` JSON
  answer and is closed, instead of waiting unanswered in the listen queue;
- a taken port is named in the error.
"""
from __future__ import annotations

import errno
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer

from dashboard.access import check_bind
from dashboard.app import create_app, prepare
from dashboard.query import DataSource

log = logging.getLogger("meshscope.dashboard.server")
logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" under load: /metrics shows load

#: seconds a request may take to arrive in full (headers and body), however it trickles in
REQUEST_READ_TIMEOUT = 10.0
#: seconds an idle keep-alive connection stays open
IDLE_TIMEOUT = 30.0
#: open connections beyond which new clients are answered 503 at once
MAX_CONNECTIONS = 512
#: worker threads running the app (requests are read without them)
THREADS = 8
MAX_BODY = 4 * 1024 * 1024  # Dash callback bodies are small; nothing here uploads


class ServeError(OSError):
    """The UI could not listen (port taken, address not available); the message names host and port."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


_REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s")


class _DeadlineChannel(HTTPChannel):
    """An HTTP channel that remembers when the request it is reading began."""

    request_started = 0.0

    def received(self, data: bytes) -> bool:
        if self.request is None and data:
            self.request_started = time.monotonic()
        return super().received(data)


class GuardedServer(TcpWSGIServer):
    """waitress's TCP server plus a whole-request read deadline and a refusing connection cap."""

    channel_class = _DeadlineChannel
    refused = 0
    timed_out = 0

    def __init__(self, *args: Any, read_timeout: float = REQUEST_READ_TIMEOUT, **kw: Any) -> None:
        self.read_timeout = read_timeout
        self._stopping = threading.Event()
        super().__init__(*args, **kw)

    def readable(self) -> bool:
        """Keep accepting past the cap (waitress would stop) so an over-cap client gets a 503, not silence."""
        now = time.time()
        if now >= self.next_channel_cleanup:
            self.next_channel_cleanup = now + self.adj.cleanup_interval
            self.maintenance(now)
        return bool(self.accepting)

    def handle_accept(self) -> None:
        if len(self._map) < self.adj.connection_limit:
            return super().handle_accept()
        try:
            pair = self.accept()
        except OSError:
            return
        if pair is None:
            return
        conn = pair[0]
        self.refused += 1
        body = (b'{"error": "too many open connections (limit %d); retry shortly"}' % self.adj.connection_limit)
        try:
            conn.setblocking(False)
            conn.send(_REFUSAL % (len(body), body))
        except OSError:
            pass
        finally:
            conn.close()

    def maintenance(self, now: float) -> None:
        super().maintenance(now)
        cutoff = time.monotonic() - self.read_timeout
        for channel in list(self.active_channels.values()):
            req = getattr(channel, "request", None)
            if req is not None and not req.completed and channel.request_started < cutoff:
                self.timed_out += 1
                channel.will_close = True  # partial request past its deadline: drop the connection

    def serve(self) -> None:
        """Run the event loop until `stop()`; a short poll timeout keeps stopping prompt."""
        while not self._stopping.is_set():
            self.asyncore.loop(timeout=0.2, map=self._map, use_poll=True, count=1)

    def stop(self) -> None:
        self._stopping.set()
        try:
            self.trigger.pull_trigger()
        except OSError:
            pass


def make_wsgi_server(app: Any, host: str, port: int, *, threads: int = THREADS,
                     connection_limit: int = MAX_CONNECTIONS, read_timeout: float = REQUEST_READ_TIMEOUT,
                     idle_timeout: float = IDLE_TIMEOUT) -> GuardedServer:
    """A listening (not yet serving) GuardedServer; raises ServeError naming the address when it cannot bind."""
    adj = Adjustments(host=host, port=port, threads=threads, connection_limit=connection_limit,
                      channel_timeout=idle_timeout, cleanup_interval=1, asyncore_use_poll=True,
                      max_request_body_size=MAX_BODY, max_request_header_size=64 * 1024,
                      ident="meshscope", expose_tracebacks=False, clear_untrusted_proxy_headers=True)
    try:
        return GuardedServer(app, map={}, adj=adj, read_timeout=read_timeout)
    except OSError as exc:
        shown = f"[{host}]" if ":" in host else host
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(exc.errno, f"cannot serve the UI on {shown}:{port}: the port is taken by another "
                                        "process (choose another with --port)") from None
        raise ServeError(exc.errno, f"cannot serve the UI on {shown}:{port}: {exc.strerror or exc}") from None


@dataclass
class RunningUI:
    server: GuardedServer
    thread: threading.Thread
    url: str
    _stopped: bool = field(default=False, repr=False)
    app: Any = field(default=None, repr=False)  # the Dash app served (tests look at what it prepared)
    preparing: threading.Thread | None = field(default=None, repr=False)  # `dashboard.app.prepare`, started with it

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.server.stop()
        self.thread.join(timeout=10)
        # the connections first: a request still in its handler then ends as a client gone. The trigger (the pipe a
        # handler pulls when it finishes while its connection is open; the listener closes it with itself) closes
        # only after the handlers ended: closed among the connections, a handler finishing in between pulled a closed
        # pipe (EBADF, a logged traceback)
        last = (self.server, self.server.trigger)
        for channel in list(self.server._map.values()):
            if channel not in last:
                _close(channel)
        self.server.task_dispatcher.shutdown(timeout=5)
        for channel in last:
            _close(channel)


def _close(channel: Any) -> None:
    try:
        channel.close()
    except OSError:
        pass


def start(source: DataSource, host: str = "127.0.0.1", port: int = 8050, token: str | None = None,
          refresh_s: float = 10.0, allowed_hosts: tuple[str, ...] | None = None) -> RunningUI:
    """Serve in a background thread; raises `AccessError` before listening if the bind is unsafe.

    `allowed_hosts` are extra names the `Host` header may carry (a DNS name the UI is reached by;
    default: $MESHSCOPE_ALLOWED_HOSTS, comma-separated, which `--allowed-host` sets); loopback
    names, IP literals and `host` itself are always accepted.
    """
    check_bind(host, token)
    if allowed_hosts is None:
        allowed_hosts = tuple(h.strip() for h in os.environ.get("MESHSCOPE_ALLOWED_HOSTS", "").split(",") if h.strip())
    app = create_app(source, token=token, refresh_s=refresh_s, bind_host=host, allowed_hosts=allowed_hosts)
    server = make_wsgi_server(app.server, host, port)
    thread = threading.Thread(target=server.serve, name=f"meshscope-ui:{server.effective_port}", daemon=True)
    thread.start()
    # the first views built and laid out now, not on the first page's time (a page asking meanwhile shares them)
    preparing = threading.Thread(target=prepare, args=(app, server._stopping), name="meshscope-ui-prepare", daemon=True)
    preparing.start()
    shown = f"[{host}]" if ":" in host else host
    return RunningUI(server, thread, f"http://{shown}:{server.effective_port}", app=app, preparing=preparing)


def serve(source: DataSource, host: str = "127.0.0.1", port: int = 8050, token: str | None = None,
          refresh_s: float = 10.0, allowed_hosts: tuple[str, ...] | None = None) -> None:
    """Serve in the foreground until interrupted (what `meshscope up` / `serve` call)."""
    ui = start(source, host, port, token, refresh_s, allowed_hosts)
    print(f"meshscope UI on {ui.url}" + (" (token required)" if token else ""), flush=True)
    try:
        ui.thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        ui.stop()
