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
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from mesh.config import load_text
from mesh.controlplane.xds_rest import QuietHTTPServer

MAX_BODY = 4 * 1024 * 1024


class ControlServer:
    def __init__(self, mesh: Any, port: int = 15080, host: str = "127.0.0.1"):
        self.mesh = mesh
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, code: int, payload: Any) -> None:
                body = json.dumps(payload, indent=1, default=str).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                code, payload = server.get(self.path)
                self._send(code, payload)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY:
                    return self._send(413, {"error": f"body larger than {MAX_BODY} bytes"})
                body = self.rfile.read(length).decode("utf-8", errors="replace")
                code, payload = server.post(self.path, body, self.headers.get("x-filename") or "<request>")
                self._send(code, payload)

            def do_DELETE(self) -> None:  # noqa: N802
                code, payload = server.post(self.path, "", "<request>", method="DELETE")
                self._send(code, payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = QuietHTTPServer((host, port), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.1,), name="mesh-control-api",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
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
                return 200, {"scenario": name, "changed": r.changed, "seconds": r.seconds, "warnings": r.warnings}
            if method == "POST" and path in ("/v1/apply", "/v1/delete"):
                res = load_text(body, filename, exclude_namespaces=frozenset())
                if res.problems:
                    return 400, {"error": "invalid config", "problems": [str(p) for p in res.problems]}
                if not res.objects:
                    return 400, {"error": f"{filename}: no objects found"}
                r = self.mesh.apply(res.objects) if path == "/v1/apply" else self.mesh.delete(res.objects)
                return 200, {"changed": r.changed, "seconds": r.seconds, "warnings": r.warnings}
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

    def __init__(self, url: str = "http://127.0.0.1:15080", timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: str | None = None, filename: str | None = None) -> Any:
        import urllib.error
        import urllib.request
        headers = {"content-type": "application/yaml"}
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
            raise ControlError(payload.get("error", f"HTTP {e.code}"), payload.get("problems"), e.code) from None
        except (urllib.error.URLError, OSError) as e:
            raise ControlError(f"no bundled mesh answers at {self.url} ({getattr(e, 'reason', e)}); "
                               "start one with `meshscope up`") from None

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
        return self._call("POST", "/v1/apply", yaml_text, filename)

    def delete(self, yaml_text: str, filename: str) -> dict:
        return self._call("POST", "/v1/delete", yaml_text, filename)
