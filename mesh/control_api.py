"""The bundled mesh's control API on 127.0.0.1 (default port 15080), used by `meshscope apply/delete/scenario`.

  GET  /v1/status                 where everything is (ports, workloads, scenario)
  GET  /v1/config                 the current config as multi-document YAML
  GET  /v1/scenarios              the scenario list
  POST /v1/scenarios/<name>       apply a scenario;  DELETE /v1/scenario  back to baseline
  POST /v1/apply   (YAML body)    create/replace objects; 400 with problems, 409 if refused
  POST /v1/delete  (YAML body)    delete the objects named in the body

Responses are JSON. Bodies are validated with the config model; the mesh then
translates and pushes the whole candidate config and answers only when every
sidecar applied it (or refused it, in which case nothing changed).

Every request needs `Authorization: Bearer <token>`; the mesh draws a random token
at each start and writes it to `<mesh data dir>/control.token` (mode 0600), so only
the user who started the mesh (or whoever they hand it to) can change it. Anything
else gets `401` and a JSON error, before any route runs or any body is read.
"""
from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path
from typing import Any

from mesh.bearer import bearer_matches
from mesh.config import last_wins, load_text
from mesh.config.schema import problems as schema_problems
from mesh.controlplane.xds_rest import BoundedHTTPServer, DeadlineHandler

MAX_BODY = 4 * 1024 * 1024
MAX_CONNECTIONS = 512  # threads at most; past it a 503 at once. Each request must arrive within read_timeout
TOKEN_ENV = "MESHSCOPE_CONTROL_TOKEN"
DEFAULT_URL = "http://127.0.0.1:15080"
DEFAULT_DATA_DIR = Path(".meshscope")  # `meshscope up --data-dir`; the mesh keeps its files in <it>/mesh
TOKEN_FILE = "control.token"
URL_FILE = "control.url"  # beside the token: where that mesh's control API listens (`meshscope up` writes it)


class ServeError(OSError):
    """A server could not listen; the message names the address and what to do."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def token_path(data_dir: Path = DEFAULT_DATA_DIR) -> Path:
    """Where `meshscope up --data-dir DATA_DIR` writes the control token."""
    return Path(data_dir) / "mesh" / TOKEN_FILE


def url_path(data_dir: Path = DEFAULT_DATA_DIR) -> Path:
    return Path(data_dir) / "mesh" / URL_FILE


def recorded_url(data_dir: Path | None = None) -> str | None:
    """The control URL the running `meshscope up` recorded in its data dir, if any."""
    try:
        url = url_path(data_dir if data_dir is not None else DEFAULT_DATA_DIR).read_text().strip()
    except OSError:
        return None
    return url if url.startswith(("http://", "https://")) else None


def resolve_token(token: str | None = None, data_dir: Path | None = None) -> str:
    """The token to send: explicit, else $MESHSCOPE_CONTROL_TOKEN, else the file the mesh wrote.

    Raises ControlError naming where it looked when there is none.
    """
    if token:
        return token.strip()
    if os.environ.get(TOKEN_ENV, "").strip():
        return os.environ[TOKEN_ENV].strip()
    path = token_path(data_dir if data_dir is not None else DEFAULT_DATA_DIR)
    try:
        found = path.read_text().strip()
    except FileNotFoundError:
        raise ControlError(f"no control token at {path} (is `meshscope up` running with this --data-dir?); "
                           f"pass --token or set {TOKEN_ENV}") from None
    except OSError as exc:
        raise ControlError(f"cannot read the control token {path}: {exc.strerror or exc}") from None
    if not found:
        raise ControlError(f"the control token file {path} is empty; pass --token or set {TOKEN_ENV}")
    return found


class ControlServer:
    def __init__(self, mesh: Any, port: int = 15080, host: str = "127.0.0.1", *, token: str):
        if not token:
            raise ValueError("the control API needs a token")
        self.mesh = mesh
        self._token = token.encode()
        self.unauthorized = 0
        server = self

        class Handler(DeadlineHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10.0  # a client that stops sending (before or after authenticating) loses its thread
            read_timeout = 10.0  # the whole request, however slowly it trickles (4 MiB over loopback: ms)

            def _send(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                body = json.dumps(payload, indent=1, default=str).encode()
                self.send_response(code)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorized(self) -> bool:
                """Check the bearer token; otherwise answer 401 and drop the connection (body unread)."""
                if server.authorized(self.headers.get("authorization")):
                    return True
                server.unauthorized += 1
                try:  # drain a small body unread: closing on unread data would reset the answer away
                    length = int(self.headers.get("content-length") or 0)
                except ValueError:
                    length = 0
                if 0 < length <= MAX_BODY:
                    self.rfile.read(length)
                self.close_connection = True
                self._send(401, {"error": "missing or wrong control token: send 'Authorization: Bearer <token>' "
                                          f"(`meshscope up` writes it to DATA_DIR/mesh/{TOKEN_FILE})"},
                           {"www-authenticate": 'Bearer realm="meshscope-control"', "connection": "close"})
                return False

            def do_GET(self) -> None:  # noqa: N802
                if not self._authorized():
                    return
                code, payload = server.get(self.path)
                self._send(code, payload)

            def do_POST(self) -> None:  # noqa: N802
                if not self._authorized():
                    return
                try:
                    length = int(self.headers.get("content-length") or 0)
                except ValueError:
                    return self._send(400, {"error": "bad content-length"})
                if length > MAX_BODY:
                    return self._send(413, {"error": f"body larger than {MAX_BODY} bytes"})
                body = self.rfile.read(length).decode("utf-8", errors="replace")
                code, payload = server.post(self.path, body, self.headers.get("x-filename") or "<request>")
                self._send(code, payload)

            def do_DELETE(self) -> None:  # noqa: N802
                if not self._authorized():
                    return
                code, payload = server.post(self.path, "", "<request>", method="DELETE")
                self._send(code, payload)

            def log_message(self, *args: Any) -> None:
                pass

        try:
            self._httpd = BoundedHTTPServer((host, port), Handler, max_connections=MAX_CONNECTIONS)
        except OSError as exc:
            raise ServeError(exc.errno, f"cannot serve the control API on {host}:{port}: "
                                     f"{'the port is taken by another process (choose another with --control-port)' if exc.errno == errno.EADDRINUSE else exc.strerror}") from None
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.1,), name="mesh-control-api",
                                        daemon=True)

    def authorized(self, header: str | None) -> bool:
        return bearer_matches(header, self._token)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits forever for a serve loop that never started
            self._httpd.shutdown()
        self._httpd.server_close()

    # --- routes ------------------------------------------------------------------------
    def get(self, path: str) -> tuple[int, Any]:
        from mesh.scenarios import SCENARIOS
        if path == "/v1/status":
            return 200, self.mesh.status()
        if path == "/v1/config":
            import yaml
            return 200, {"yaml": yaml.safe_dump_all([o.raw for o in self.mesh.objects], sort_keys=False)}
        if path == "/v1/scenarios":
            return 200, {"active": self.mesh.scenario, "scenarios": [s.to_dict() for s in SCENARIOS]}
        return 404, {"error": f"no such endpoint: GET {path}"}

    def post(self, path: str, body: str, filename: str, method: str = "POST") -> tuple[int, Any]:
        from mesh.bundled import ConfigRejected
        try:
            if method == "DELETE" and path == "/v1/scenario":
                r = self.mesh.clear_scenario()
                return 200, {"scenario": None, "seconds": r.seconds}
            if method == "POST" and path.startswith("/v1/scenarios/"):
                name = path.rsplit("/", 1)[-1]
                try:
                    r = self.mesh.apply_scenario(name)
                except KeyError as exc:
                    return 404, {"error": str(exc.args[0])}
                return 200, {"scenario": name, "changed": r.changed, "seconds": r.seconds, "warnings": r.warnings,
                             "in_sync": r.in_sync}
            if method == "POST" and path in ("/v1/apply", "/v1/delete"):
                res = load_text(body, filename, exclude_namespaces=frozenset())
                if path == "/v1/apply":  # every field Istio's API refuses, not just the first
                    res.problems.extend(schema_problems(res.objects))
                if res.problems:
                    return 400, {"error": "invalid config", "problems": [str(p) for p in res.problems]}
                if not res.objects:
                    return 400, {"error": f"{filename}: no objects found"}
                objects, duplicates = last_wins(res.objects)  # a body naming an object twice: the last counts
                verb = "apply" if path == "/v1/apply" else "delete"  # the journal's "who": command and file
                who = f"meshscope {verb} -f {filename}"
                r = self.mesh.apply(objects, who=who) if verb == "apply" else self.mesh.delete(objects, who=who)
                return 200, {"changed": r.changed, "seconds": r.seconds, "in_sync": r.in_sync,
                             "warnings": [d.summary() for d in duplicates] + [str(p) for p in res.skipped]
                             + list(r.warnings)}
        except ConfigRejected as exc:
            return 409, {"error": "config rejected; the previous config is still serving", "problems": exc.problems}
        return 404, {"error": f"no such endpoint: {method} {path}"}


class ControlError(RuntimeError):
    """The control API refused a request, or is not reachable; `problems` lists what to fix."""

    def __init__(self, message: str, problems: list[str] | None = None, status: int = 0):
        super().__init__(message)
        self.problems = problems or []
        self.status = status


class ControlClient:
    """What `meshscope apply/delete/scenario` use to talk to a running bundled mesh."""

    def __init__(self, url: str = DEFAULT_URL, timeout: float = 30.0, token: str | None = None,
                 data_dir: Path | None = None):
        """`token` as `resolve_token` finds it (explicit, env, or `data_dir`'s token file), looked up on first use."""
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._token = token
        self._data_dir = data_dir

    def _call(self, method: str, path: str, body: str | None = None, filename: str | None = None) -> Any:
        import urllib.error
        import urllib.request
        headers = {"content-type": "application/yaml"}
        try:
            headers["authorization"] = f"Bearer {resolve_token(self._token, self._data_dir)}"
            missing = None
        except ControlError as exc:  # still ask: "no mesh answers" is the better message when none runs
            missing = exc
            missing.status = 401
        if filename:
            headers["x-filename"] = filename
        req = urllib.request.Request(self.url + path, data=body.encode() if body is not None else None,
                                     method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                payload = json.loads(e.read() or b"{}")
            except ValueError:
                payload = {}
            if e.code == 401 and missing is not None:
                raise missing from None
            if e.code == 401:
                raise ControlError(f"the mesh at {self.url} refused the control token (401): use the one in "
                                   f"DATA_DIR/mesh/{TOKEN_FILE} of the running `meshscope up` (--data-dir, "
                                   f"--token or {TOKEN_ENV})", status=401) from None
            raise ControlError(payload.get("error", f"HTTP {e.code}"), payload.get("problems"), e.code) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, ConnectionRefusedError):  # nothing listens there: the one case to start a mesh
                hint = ""
                recorded = recorded_url(self._data_dir)
                if recorded and recorded.rstrip("/") != self.url:
                    hint = f"; the mesh of this --data-dir recorded {recorded} (pass --control {recorded})"
                raise ControlError(f"no bundled mesh answers at {self.url} (connection refused){hint}; "
                                   "start one with `meshscope up`") from None
            raise ControlError(f"the mesh at {self.url} did not complete the request ({type(reason).__name__}: "
                               f"{reason}); it is running, so check its output (`meshscope up`)") from None

    def status(self) -> dict:
        return self._call("GET", "/v1/status")

    def config_yaml(self) -> str:
        return self._call("GET", "/v1/config")["yaml"]

    def scenarios(self) -> dict:
        return self._call("GET", "/v1/scenarios")

    def apply_scenario(self, name: str) -> dict:
        return self._call("POST", f"/v1/scenarios/{name}", "")

    def clear_scenario(self) -> dict:
        return self._call("DELETE", "/v1/scenario")

    def apply(self, yaml_text: str, filename: str) -> dict:
        check_body_size(len(yaml_text.encode()), "apply")
        return self._call("POST", "/v1/apply", yaml_text, filename)

    def delete(self, yaml_text: str, filename: str) -> dict:
        check_body_size(len(yaml_text.encode()), "delete")
        return self._call("POST", "/v1/delete", yaml_text, filename)


def check_body_size(size: int, verb: str) -> None:
    """Refuse, before sending, a change the control API would refuse for its size (MAX_BODY)."""
    if size > MAX_BODY:
        raise ControlError(f"the change is {size / 1048576:.1f} MiB, over the control API's "
                           f"{MAX_BODY // 1048576} MiB request limit; split it into several `meshscope {verb}` runs",
                           status=413)
