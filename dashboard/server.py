"""Serving the app: bind checks, a threaded WSGI server, and a handle tests and benches can stop."""
from __future__ import annotations

import threading
from dataclasses import dataclass

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from dashboard.access import check_bind
from dashboard.app import create_app
from dashboard.query import DataSource


class _QuietHandler(WSGIRequestHandler):
    """One log line per request would drown `meshscope up` output; /metrics counts requests instead."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@dataclass
class RunningUI:
    server: BaseWSGIServer
    thread: threading.Thread
    url: str

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def start(source: DataSource, host: str = "127.0.0.1", port: int = 8050, token: str | None = None,
          refresh_s: float = 10.0) -> RunningUI:
    """Serve in a background thread; raises `AccessError` before listening if the bind is unsafe."""
    check_bind(host, token)
    app = create_app(source, token=token, refresh_s=refresh_s)
    server = make_server(host, port, app.server, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name=f"meshscope-ui:{port}", daemon=True)
    thread.start()
    shown = f"[{host}]" if ":" in host else host
    return RunningUI(server, thread, f"http://{shown}:{server.server_port}")


def serve(source: DataSource, host: str = "127.0.0.1", port: int = 8050, token: str | None = None,
          refresh_s: float = 10.0) -> None:
    """Serve in the foreground until interrupted (what `meshscope up` / `serve` call)."""
    ui = start(source, host, port, token, refresh_s)
    print(f"meshscope UI on {ui.url}" + (" (token required)" if token else ""), flush=True)
    try:
        ui.thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        ui.stop()
