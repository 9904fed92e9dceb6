"""The bundled mesh: control plane, real Envoy sidecars, demo apps and traffic, as one object.

`BundledMesh(BundledConfig(...)).start()` runs the whole Bookinfo-shaped demo on
127.0.0.1 and keeps it running until `stop()` (also on exit or SIGTERM). Config
changes go through `apply` / `delete` (like kubectl), which translate the full
candidate config first, push it over xDS and wait for every sidecar to ACK; a
translation error or an Envoy NACK raises `ConfigRejected` and the last good
config keeps serving. Telemetry consumers use `scrape_targets()`,
`access_log_paths()` and `BundledConfig.otlp_endpoint`.

Both local servers authenticate their clients. The REST-xDS server speaks mutual TLS:
each sidecar presents its workload certificate, written 0600 into its own run
directory and re-written on rotation, and gets only its own config (the certificate
must carry the node's identity and have been issued to that node). The
control API wants the bearer token written to `<data_dir>/control.token` (0600) at
each start; in-process callers use the methods here directly.
"""
from __future__ import annotations

import atexit
import json
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from mesh.config import Snapshot
from mesh.config.model import ConfigObject
from mesh.control_api import TOKEN_FILE
from mesh.controlplane.bootstrap import XDS_CLIENT_FILE, build_bootstrap, xds_client_secret
from mesh.controlplane.ca import IssuedCert, MeshCA, spiffe_id
from mesh.controlplane.context import ConfigError
from mesh.controlplane.registry import Registry, Workload, free_local_port
from mesh.controlplane.store import with_applied, with_deleted
from mesh.controlplane.translate import not_enforced, translate
from mesh.controlplane.xds_rest import ServerTLS, XdsServer
from mesh.dataplane.envoy import admin_request, admin_socket_path, envoy_spec, private_dir, write_private_file
from mesh.dataplane.logrotate import LogRotator, RotatedLog, RotationPolicy
from mesh.dataplane.process import ProcessSpec
from mesh.dataplane.supervisor import Supervisor
from mesh.demo.config import demo_objects
from mesh.demo.traffic import TrafficGenerator

APPS_PROCESS = "demo-apps"


@dataclass
class BundledConfig:
    """Where the bundled mesh listens and what it runs. Tests pass free ports and a tmp data dir."""

    gateway_port: int = 8080
    control_port: int | None = 15080  # the control API (`meshscope apply/scenario`); None = off, 0 = any free port
    data_dir: Path | None = None  # logs and run files; None = a temporary directory removed on stop
    otlp_endpoint: str | None = None  # e.g. http://127.0.0.1:4318 (sidecars and apps export traces there)
    traffic_rate: float = 5.0  # requests per second through the gateway; 0 = no traffic
    scenario: str | None = None  # applied once the mesh is up
    extra_config: list[Path] = field(default_factory=list)  # more Istio YAML applied at start
    config_namespace: str = "default"  # where extra_config objects without a namespace go (`up -n`)
    trace_sampling: float = 100.0  # percent of requests the sidecars trace
    # Telemetry mode. "files": JSON access-log files the collector tails. "otel": no log files; every sidecar sends its
    # access logs through Envoy's OpenTelemetry access logger (as Istio's envoyOtelAls provider does) and its traces
    # over OTLP, both over gRPC to `otlp_grpc_endpoint` (host:port of meshscope's OTLP/gRPC receiver).
    telemetry: str = "files"
    otlp_grpc_endpoint: str | None = None
    cert_ttl: timedelta = timedelta(hours=24)
    envoy_log_level: str = "warning"
    ready_timeout: float = 30.0
    log_rotation: RotationPolicy | None = RotationPolicy()  # sidecars' access logs by size/age; None = never rotate


@dataclass(frozen=True)
class AccessLog:
    """One sidecar's JSON access log and the identity of the workload that writes it.

    The writer's principal lets a collector name callers on the server side, where a
    request only carries the caller's identity. (Same attributes as the collector's LogFile.)
    """

    path: str
    workload: str
    namespace: str
    principal: str
    format: str = "json"


@dataclass(frozen=True)
class ScrapeTarget:
    """One `/stats/prometheus` endpoint and the labels to attach to its samples."""

    url: str
    labels: dict[str, str]


@dataclass
class ApplyResult:
    changed: list[str]  # `Kind ns/name` of the objects created, replaced or deleted
    seconds: float  # from the call until every sidecar ACKed (or the wait gave up)
    warnings: list[str]
    in_sync: bool = True  # False: some sidecar had not confirmed when the wait gave up (named in warnings)


class NotReady(RuntimeError):
    """The mesh did not come up within `BundledConfig.ready_timeout` (a slow or busy machine, or a broken part)."""


class ConfigRejected(ValueError):
    """A config change the mesh refused; nothing changed. `problems` names objects and fields."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def _port_free(port: int) -> bool:
    """Whether a listener could take `port` now, asked the way the real listeners ask.

    Envoy and Python's HTTP servers bind with SO_REUSEADDR, so the TIME_WAIT connections a
    stopped run leaves behind do not block them; a check without it would refuse a restart for
    up to a minute after a clean stop. Only a live listener makes the port busy.
    """
    import socket
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
            return True
        except OSError:
            return False


class BundledMesh:
    def __init__(self, config: BundledConfig | None = None):
        self.config = config or BundledConfig()
        self._lock = threading.RLock()
        self._objects: list[ConfigObject] = []
        self._baseline: list[ConfigObject] = []
        self._scenario: str | None = None
        self._scenario_behaviors: set[str] = set()
        self.restored_scenario: str | None = None  # re-applied at start because it was active when the mesh went down
        self.registry = Registry()
        self.ca = MeshCA()
        self._certs: dict[str, IssuedCert] = {}
        self._written: dict[str, int] = {}  # workload key -> serial of the xDS client cert on disk
        self._xds_cert: IssuedCert | None = None
        self.control_token = ""
        self.xds: XdsServer | None = None
        self.supervisor: Supervisor | None = None
        self.traffic: TrafficGenerator | None = None
        self.log_rotator: LogRotator | None = None
        self.control = None
        self._tmp: Path | None = None
        self._socket_dir: Path | None = None  # short private dir for admin sockets when run_dir is too deep
        self._started = False
        self._stopped = False
        self.started_at = 0.0
        self.ready_seconds = 0.0
        self.warnings: list[str] = []
        self._halt = threading.Event()
        self._running: dict[str, list[str]] = {}  # workload key -> supervised process names
        self.rotations = 0
        self._journal = None  # mesh.journal.Journal, opened in the data dir on first use
        self._journal_quiet = False  # during start: the state is recorded once, after a restored scenario

    # --- lifecycle ---------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        if self.config.data_dir is not None:
            return Path(self.config.data_dir)
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="meshscope-mesh-"))
        return self._tmp

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def control_token_path(self) -> Path:
        return self.data_dir / TOKEN_FILE

    def admin_socket(self, w: Workload) -> Path:
        """The sidecar's Envoy admin API: a 0600 unix socket in a 0700 directory, never a TCP port."""
        return admin_socket_path(self.run_dir, f"{w.namespace}.{w.name}", self._short_socket_dir)

    def _short_socket_dir(self) -> Path:
        if self._socket_dir is None:
            self._socket_dir = Path(tempfile.mkdtemp(prefix="ms-admin-"))  # mkdtemp makes it 0700
        return self._socket_dir

    def credentials_dir(self, w: Workload) -> Path:
        """The sidecar's own run directory (0700): its xDS client certificate and key."""
        return self.run_dir / f"{w.namespace}.{w.name}"

    def start(self) -> BundledMesh:
        if self._started:
            return self
        for port, what in ((self.config.gateway_port, "gateway port (--gateway-port)"),
                           (self.config.control_port or 0, "control API port (--control-port)")):
            if port and not _port_free(port):
                raise RuntimeError(f"the {what} {port} is already in use on 127.0.0.1; pick another one")
        self._started = True
        t0 = time.monotonic()
        self.started_at = time.time()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        private_dir(self.run_dir)
        atexit.register(self.stop)
        self._install_signal_handler()
        try:
            objects = demo_objects()
            for path in self.config.extra_config:
                from mesh.config import load_paths
                from mesh.config.schema import problems as schema_problems
                res = load_paths([path], exclude_namespaces=frozenset(), default_namespace=self.config.config_namespace)
                res.problems.extend(schema_problems(res.objects))  # every field Istio's API refuses
                if res.problems:
                    raise ConfigRejected([str(p) for p in res.problems])
                objects = with_applied(objects, res.objects)
            self._xds_cert = self.ca.issue_xds_server(self.config.cert_ttl)
            self.xds = XdsServer(self._server_tls(), hold_s=25.0)  # under Envoy's 60 s REST request timeout
            self.xds.start()
            self._set_config(objects)
            self._baseline = list(objects)
            self.supervisor = Supervisor(on_restart=self._on_restart)
            self._start_apps([w for w in self.registry.workloads if not w.is_gateway])
            for w in self.registry.workloads:
                self._start_sidecar(w)
                self._running[w.key] = [f"{w.namespace}.{w.name}"]
            self._wait_ready(t0)
            self.ready_seconds = time.monotonic() - t0
            if self.config.control_port is not None:
                from mesh.control_api import ControlServer
                # hex, not urlsafe base64: a token starting with '-' is read by argparse as an option, so
                # `meshscope scenario clear --token <token>` failed one start in 64 (found by the suite)
                self.control_token = secrets.token_hex(32)
                self.control = ControlServer(self, self.config.control_port, token=self.control_token)
                self._write_control_token()
                self.control.start()
            if self.config.traffic_rate > 0:
                self.traffic = TrafficGenerator("127.0.0.1", self.config.gateway_port, self.config.traffic_rate)
                self.traffic.start()
            wanted = self.config.scenario or self._saved_scenario()
            if wanted:
                self._journal_quiet = True
                try:
                    self.apply_scenario(wanted)
                finally:
                    self._journal_quiet = False
                if not self.config.scenario:
                    self.restored_scenario = wanted
            self._journal_sync("meshscope mesh start" + "".join(f" --config {p}" for p in self.config.extra_config))
            threading.Thread(target=self._rotation_loop, name="mesh-cert-rotation", daemon=True).start()
            if self.config.log_rotation is not None and self.config.telemetry != "otel":
                self.log_rotator = LogRotator(self._rotated_logs, self.config.log_rotation).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        with self._lock:
            if self._stopped or not self._started:
                return
            self._stopped = True
        self._halt.set()
        if self.log_rotator:
            self.log_rotator.stop()
        if self.traffic:
            self.traffic.stop()
        if self.control:
            self.control.stop()
        if self.supervisor:
            self.supervisor.stop()
        if self.xds:
            self.xds.stop()
        shutil.rmtree(self.run_dir, ignore_errors=True)  # sidecars' private keys; logs stay
        self._remove_control_token()
        for d in (self._tmp, self._socket_dir):
            if d is not None:
                shutil.rmtree(d, ignore_errors=True)
        try:
            atexit.unregister(self.stop)
        except Exception:
            pass

    def _write_control_token(self) -> None:
        write_private_file(self.control_token_path, self.control_token + "\n")  # 0600, replaces an older file

    def _remove_control_token(self) -> None:
        """Remove our token file (not one a later mesh on the same data dir wrote)."""
        try:
            if self.control_token and self.control_token_path.read_text().strip() == self.control_token:
                self.control_token_path.unlink()
        except OSError:
            pass

    def __enter__(self) -> BundledMesh:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _install_signal_handler(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            def on_term(signum: int, frame: object) -> None:
                raise SystemExit(128 + signum)  # unwinds `finally` blocks and atexit, which stop the mesh
            signal.signal(signal.SIGTERM, on_term)

    # --- processes ---------------------------------------------------------------------
    def _start_apps(self, workloads: list[Workload], name: str = APPS_PROCESS) -> None:
        """One Python process serving the apps of `workloads` (the demo's are all in one)."""
        apps = []
        for w in workloads:
            for cport, port in sorted(w.app_ports.items()):
                apps.append({"workload": w.name, "app": w.app, "version": w.version, "namespace": w.namespace,
                             "port": port, "outbound_port": w.outbound_port})
        cfg = self.run_dir / f"{name}.json"
        cfg.write_text(json.dumps({"apps": apps, "otlp_endpoint": self.config.otlp_endpoint}))
        argv = [sys.executable, "-m", "mesh.demo.apps", str(cfg)]
        root = str(Path(__file__).resolve().parents[1])
        self.supervisor.start(ProcessSpec(name, argv, self.log_dir / f"{name}.log",
                                          env={"PYTHONPATH": root, "PYTHONUNBUFFERED": "1"}))

    def _sync_processes(self) -> None:
        """Start a sidecar (and an app) for each workload the config added; stop those it removed."""
        if self.supervisor is None:
            return
        current = {w.key: w for w in self.registry.workloads}
        for key in [k for k in self._running if k not in current]:
            for name in self._running.pop(key):
                self.supervisor.stop_child(name)
            if self._written.pop(key, None) is not None:  # its private key goes with it
                shutil.rmtree(self.run_dir / key.replace("/", "."), ignore_errors=True)
        for key, w in current.items():
            if key in self._running:
                continue
            if w.is_gateway:
                self.warnings.append(f"Deployment {key}: only the demo's ingress gateway runs in the bundled mesh")
                self._running[key] = []
                continue
            app = f"{APPS_PROCESS}.{w.namespace}.{w.name}"
            self._start_apps([w], app)
            self._start_sidecar(w)
            self._running[key] = [app, f"{w.namespace}.{w.name}"]

    def _start_sidecar(self, w: Workload) -> None:
        otlp = None
        if self.config.otlp_endpoint:
            u = urlsplit(self.config.otlp_endpoint)
            otlp = (u.hostname or "127.0.0.1", u.port or 4318)
        creds = private_dir(self.credentials_dir(w))
        self._write_credentials(w)
        boot = build_bootstrap(w, self.xds.port, creds, self.ca.root_pem, self.ca.xds_server_identity, otlp,
                               admin_socket=self.admin_socket(w), otlp_grpc=self._otlp_grpc())
        self.supervisor.start(envoy_spec(f"{w.namespace}.{w.name}", boot, self.run_dir, self.config.envoy_log_level))

    def _otlp_grpc(self) -> tuple[str, int] | None:
        """(host, port) of the OTLP/gRPC receiver in the `otel` telemetry mode, else None."""
        if self.config.telemetry != "otel":
            return None
        if not self.config.otlp_grpc_endpoint:
            raise ValueError("telemetry mode 'otel' needs otlp_grpc_endpoint (host:port of an OTLP/gRPC receiver)")
        host, _, port = self.config.otlp_grpc_endpoint.rpartition(":")
        return (host or "127.0.0.1", int(port))

    def _write_credentials(self, w: Workload) -> None:
        """Put the workload's current certificate where its Envoy reads its xDS client certificate."""
        cert = self._certs[w.key]
        self.xds.allow_certificate(w.node_id, cert.serial, cert.not_after.timestamp())
        write_private_file(self.credentials_dir(w) / XDS_CLIENT_FILE, json.dumps(xds_client_secret(cert)))
        self._written[w.key] = cert.serial

    def _refresh_credentials(self) -> None:
        """Re-write the client certificate of every running sidecar whose certificate changed."""
        for w in self.registry.workloads:
            if w.key in self._written and self._written[w.key] != self._certs[w.key].serial:
                self._write_credentials(w)

    def _server_tls(self) -> ServerTLS:
        return ServerTLS(self._xds_cert.cert_pem, self._xds_cert.key_pem, self.ca.root_pem)

    def _on_restart(self, name: str, count: int) -> None:
        """A restarted demo-apps process forgets injected behavior: re-inject the active scenario's."""
        if not name.startswith(APPS_PROCESS):
            return
        sc = self._scenario

        def reinject() -> None:
            from mesh.scenarios import get
            if not sc:
                return
            for workload, behavior in get(sc).behaviors.items():
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not self._halt.is_set():
                    try:
                        self.set_behavior(workload, **behavior)
                        break
                    except (OSError, KeyError):
                        time.sleep(0.1)
        threading.Thread(target=reinject, name="mesh-reinject-behavior", daemon=True).start()

    def _bind_failure(self) -> str | None:
        """An Envoy that could not bind a listener port says so in its log."""
        for log in self.run_dir.glob("*.envoy.log"):
            try:
                text = log.read_text(errors="replace")
            except OSError:
                continue
            for line in text.splitlines():
                if "Address already in use" in line or "cannot bind" in line:
                    return f"{log.name.removesuffix('.envoy.log')}: {line.split('] ', 2)[-1].strip()}"
        return None

    def _wait_ready(self, t0: float) -> None:
        deadline = t0 + self.config.ready_timeout
        pending = {w.name: w for w in self.registry.workloads}
        while pending:
            for name, w in list(pending.items()):
                try:
                    # through the stats port: ready there means the scrape path works too
                    with urllib.request.urlopen(f"http://127.0.0.1:{w.stats_port}/ready", timeout=1) as r:
                        if r.read().strip() == b"LIVE":
                            del pending[name]
                except (OSError, urllib.error.URLError):
                    pass
            if pending and time.monotonic() > deadline:
                raise NotReady(f"sidecars not ready after {self.config.ready_timeout}s: {sorted(pending)} "
                                   f"(see {self.run_dir}/*.envoy.log)")
            if pending:
                time.sleep(0.02)
        import socket
        app_ports = [p for w in self.registry.workloads for p in w.app_ports.values()]
        while app_ports:  # the apps listen before any request is sent, so startup leaves no error series
            try:
                with socket.create_connection(("127.0.0.1", app_ports[0]), timeout=1):
                    app_ports.pop(0)
            except OSError:
                if time.monotonic() > deadline:
                    raise NotReady(f"demo apps not listening after {self.config.ready_timeout}s "
                                       f"(see {self.log_dir / 'demo-apps.log'})") from None
                time.sleep(0.02)
        failure = self._bind_failure()  # Envoy logs it when the listener arrives, before it reports LIVE
        if failure:
            raise RuntimeError(f"a sidecar could not bind its port ({failure}); is another program using it?")
        while True:  # first 200 through the gateway: the whole chain works
            try:
                with urllib.request.urlopen(self.gateway_url + "/productpage", timeout=5) as r:
                    if r.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise NotReady(f"gateway {self.gateway_url}/productpage not serving after "
                                   f"{self.config.ready_timeout}s (logs in {self.log_dir})")
            time.sleep(0.02)

    # --- config ------------------------------------------------------------------------
    def _gateway_ports(self, objects: list[ConfigObject]) -> None:
        """Bind each Gateway server port to a local port: the first to `gateway_port`, others to free ones."""
        used = set(self.registry.gateway_ports.values())
        for o in objects:
            if o.kind != "Gateway":
                continue
            for s in o.spec.get("servers") or []:
                n = ((s or {}).get("port") or {}).get("number")
                if isinstance(n, int) and n not in self.registry.gateway_ports:
                    port = self.config.gateway_port if self.config.gateway_port not in used else free_local_port()
                    self.registry.gateway_ports[n] = port
                    used.add(port)

    def _translate(self, objects: list[ConfigObject]) -> dict:
        self.registry.update(objects)
        self._gateway_ports(objects)
        for w in self.registry.workloads:
            cert = self._certs.get(w.key)
            if cert is None or cert.identity != spiffe_id(w.namespace, w.service_account, self.ca.trust_domain):
                self._certs[w.key] = self.ca.issue(w.namespace, w.service_account, self.config.cert_ttl)
        otel = self.config.telemetry == "otel"
        return translate(objects, self.registry, self._certs, self.ca.root_pem, self.log_dir,
                         tracing=bool(self.config.otlp_endpoint) or otel, sampling=self.config.trace_sampling,
                         access_log="otel" if otel else "file")

    def _set_config(self, objects: list[ConfigObject]) -> list[str]:
        try:
            proxies = self._translate(objects)
        except ConfigError as exc:
            if self._objects:
                self._translate(self._objects)  # restore the registry of the last good config
            raise ConfigRejected(str(exc).split("; ")) from None
        identities = {w.node_id: self._certs[w.key].identity for w in self.registry.workloads}
        self._refresh_credentials()  # before the server expects a new identity from a sidecar
        for node_id, res in proxies.items():
            self.xds.set_resources(node_id, res.resources, identities[node_id])
        self._objects = objects
        warnings = sorted({w for r in proxies.values() for w in r.warnings} | set(not_enforced(objects)))
        self.warnings = warnings
        return warnings

    # --- config journal ----------------------------------------------------------------
    @property
    def journal(self):  # noqa: ANN201 - mesh.journal.Journal
        """The config journal in the data dir (survives restarts of the mesh)."""
        if self._journal is None:
            from mesh.journal import open_journal
            self._journal = open_journal(self.data_dir)
        return self._journal

    def _journal_sync(self, who: str) -> None:
        """Record the whole config: only objects that differ from the journal's last state are new entries."""
        from mesh.journal import content_of
        try:
            self.journal.sync([(o.kind, o.namespace, o.name, content_of(o.spec, o.labels, o.annotations), o.api_version)
                               for o in self._objects], who=who)
        except Exception as exc:  # noqa: BLE001 - the journal must never stop the mesh
            self.warnings.append(f"config journal not updated: {exc}")

    def _journal_push(self, previous: list[ConfigObject], now: list[ConfigObject], who: str) -> None:
        from mesh.journal import content_of
        if self._journal_quiet:
            return
        try:
            new = {o.key: o for o in now}
            for key, o in new.items():
                self.journal.observe(o.kind, o.namespace, o.name, content_of(o.spec, o.labels, o.annotations), who=who,
                                     api_version=o.api_version)
            for o in previous:
                if o.key not in new:
                    self.journal.observe(o.kind, o.namespace, o.name, None, who=who, deleted=True,
                                         api_version=o.api_version)
        except Exception as exc:  # noqa: BLE001
            self.warnings.append(f"config journal not updated: {exc}")

    def _journal_behavior(self, workload: str, behavior: dict, who: str) -> None:
        """A scenario's bad deploy is a change too: recorded as the workload's behaviour."""
        from mesh.journal import content_of
        if self._journal_quiet:
            return
        w = next((x for x in self.registry.workloads if x.name == workload), None)
        try:
            self.journal.observe("WorkloadBehavior", w.namespace if w else None, workload,
                                 content_of(dict(behavior), dict(w.labels) if w else {}), who=who)
        except Exception as exc:  # noqa: BLE001
            self.warnings.append(f"config journal not updated: {exc}")

    def _push(self, objects: list[ConfigObject], changed: list[str], wait: bool, timeout: float = 30.0,
              who: str | None = None) -> ApplyResult:
        with self._lock:
            t0 = time.monotonic()
            wall0 = time.time()
            previous = self._objects
            before = self.xds.versions() if self.xds else {}
            warnings = self._set_config(objects)
            self._sync_processes()
            behind: list[str] = []
            if wait and self.xds is not None:
                nodes = [w.node_id for w in self.registry.workloads]
                after = self.xds.versions()
                streams = {k for k, v in after.items() if before.get(k) != v}
                while time.monotonic() - t0 < timeout and not self.xds.in_sync(nodes, streams):
                    time.sleep(0.01)
                behind = self.xds.out_of_sync(nodes, streams)
                if behind:  # say so rather than claim every sidecar has the config
                    names = ", ".join(n.split("~")[2] for n in behind)
                    warnings = [*warnings, f"not confirmed within {timeout:.0f}s by: {names}; "
                                           "they apply it when they next poll"]
                rejected = self.xds.rejections_since(wall0)
                if rejected:
                    self._set_config(previous)
                    self._sync_processes()
                    msgs = sorted({f"Envoy rejected the {r.type_url.rsplit('.', 1)[-1]} update for "
                                   f"{r.node_id.split('~')[2]}: {r.message or self._rejection_reason(r.node_id)}"
                                   for r in rejected})
                    raise ConfigRejected(msgs)
            if who is not None:
                self._journal_push(previous, self._objects, who)
            return ApplyResult(changed, time.monotonic() - t0, warnings, in_sync=not behind)

    def _rejection_reason(self, node_id: str) -> str:
        """Envoy logs why it refused a REST update; take the latest such line from its log."""
        name = node_id.split("~")[2]  # <workload>.<namespace>
        workload, _, namespace = name.rpartition(".")
        log = self.run_dir / f"{namespace}.{workload}.envoy.log"
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                lines = [ln for ln in log.read_text(errors="replace").splitlines()[-200:] if " rejected: " in ln]
            except OSError:
                lines = []
            if lines:
                return lines[-1].split(" rejected: ", 1)[1].strip()
            time.sleep(0.05)
        return "see " + str(log)

    def apply(self, objects: Iterable[ConfigObject], wait: bool = True, who: str = "meshscope (API)") -> ApplyResult:
        """Create or replace objects (kubectl apply); raises ConfigRejected and keeps the old config."""
        objects = list(objects)
        from mesh.config.schema import validate_object
        invalid = [f"{o.ref} {i.message} ({o.source_of(i.path)})" for o in objects for i in validate_object(o)]
        if invalid:  # every field Istio's API refuses, before anything is translated
            raise ConfigRejected(invalid)
        with self._lock:
            return self._push(with_applied(self._objects, objects), [o.ref for o in objects], wait, who=who)

    def delete(self, objects: Iterable[ConfigObject], wait: bool = True, who: str = "meshscope (API)") -> ApplyResult:
        objects = list(objects)
        with self._lock:
            remaining, missing = with_deleted(self._objects, objects)
            if missing:
                raise ConfigRejected([f"{k} {ns}/{n} not found" if ns else f"{k} {n} not found" for k, ns, n in missing])
            return self._push(remaining, [o.ref for o in objects], wait, who=who)

    @property
    def objects(self) -> list[ConfigObject]:
        return list(self._objects)

    def snapshot(self) -> Snapshot:
        return Snapshot(self._objects)

    # --- scenarios ---------------------------------------------------------------------
    @property
    def scenario(self) -> str | None:
        return self._scenario

    @property
    def scenario_path(self) -> Path:
        """The active scenario's name, kept in the data dir so a restart (even after kill -9) re-applies it."""
        return self.data_dir / "active-scenario"

    def _saved_scenario(self) -> str | None:
        from mesh.scenarios import names
        try:
            name = self.scenario_path.read_text().strip()
        except OSError:
            return None
        if name and name not in names():
            self.warnings.append(f"{self.scenario_path}: unknown scenario {name!r} not re-applied")
            return None
        return name or None

    def _save_scenario(self, name: str | None) -> None:
        try:
            if name:
                write_private_file(self.scenario_path, name + "\n")
            else:
                self.scenario_path.unlink(missing_ok=True)
        except OSError as exc:  # the scenario still applies; only its survival across restarts is lost
            self.warnings.append(f"could not record the active scenario in {self.scenario_path}: {exc}")

    def apply_scenario(self, name: str, who: str | None = None) -> ApplyResult:
        from mesh.scenarios import get
        sc = get(name)
        who = who or f"meshscope mesh scenario {name}"
        with self._lock:
            if self._scenario:
                self.clear_scenario(who=who)
            result = self._push(with_applied(self._baseline, sc.objects), [o.ref for o in sc.objects], True, who=who)
            for workload, behavior in sc.behaviors.items():
                self.set_behavior(workload, **behavior)
                self._scenario_behaviors.add(workload)
                self._journal_behavior(workload, behavior, who)
            if self.traffic and sc.traffic_concurrency > 1:
                self.traffic.set_rate(self.traffic.rate, sc.traffic_concurrency)
            self._scenario = name
            self._save_scenario(name)
            return result

    def clear_scenario(self, who: str = "meshscope mesh scenario --clear") -> ApplyResult:
        """Back to the healthy baseline: config, app behavior and traffic shape."""
        with self._lock:
            for workload in sorted(self._scenario_behaviors):
                self.set_behavior(workload)
                self._journal_behavior(workload, {}, who)
            self._scenario_behaviors.clear()
            if self.traffic:
                self.traffic.set_rate(self.traffic.rate, 1)
            result = self._push(list(self._baseline), [], True, who=who)
            self._scenario = None
            self._save_scenario(None)
            return result

    def reset(self) -> ApplyResult:
        """Restore the healthy baseline whatever was applied since start (tests call this after each use)."""
        with self._lock:
            return self.clear_scenario()

    # --- runtime handles ---------------------------------------------------------------
    def set_behavior(self, workload: str, **behavior: object) -> dict:
        """Inject latency/errors into a demo app (a scenario's bad deploy); no arguments resets it."""
        w = next((x for x in self.registry.workloads if x.name == workload and not x.is_gateway), None)
        if w is None:
            raise KeyError(f"no demo workload named {workload!r}")
        port = next(iter(w.app_ports.values()))
        req = urllib.request.Request(f"http://127.0.0.1:{port}/_meshscope/behavior", data=json.dumps(behavior).encode(),
                                     method="POST", headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def rotate_certificates(self, ttl: timedelta | None = None) -> dict[str, int]:
        """Issue fresh certificates to every sidecar and push them over SDS (no restart)."""
        with self._lock:
            for w in self.registry.workloads:
                self._certs[w.key] = self.ca.issue(w.namespace, w.service_account, ttl or self.config.cert_ttl)
            self._xds_cert = self.ca.issue_xds_server(ttl or self.config.cert_ttl)
            self.xds.set_tls(self._server_tls())
            self._push(self._objects, [], True)  # re-writes the sidecars' xDS client certificates too
            return {k: c.serial for k, c in self._certs.items()}

    def _rotation_loop(self) -> None:
        """Re-issue certificates past half their lifetime, as istio-agent does (pushed over SDS)."""
        from datetime import datetime, timezone
        while not self._halt.wait(1.0):
            now = datetime.now(timezone.utc)
            certs = [*self._certs.values(), *([self._xds_cert] if self._xds_cert else [])]
            if any(now - c.not_before > (c.not_after - c.not_before) / 2 for c in certs):
                try:
                    self.rotate_certificates()
                    self.rotations += 1
                except ConfigRejected:
                    pass  # secrets alone are never refused; keep serving the old ones

    def certificate(self, workload: str) -> IssuedCert:
        return next(c for k, c in self._certs.items() if k.split("/", 1)[1] == workload)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.config.gateway_port}"

    @property
    def workloads(self) -> list[Workload]:
        return list(self.registry.workloads)

    def workload(self, name: str) -> Workload:
        for w in self.registry.workloads:
            if w.name == name:
                return w
        raise KeyError(f"no workload named {name!r}")

    def stats_url(self, workload: str) -> str:
        """The sidecar's stats port: GET /stats/prometheus and GET /ready, nothing else."""
        return f"http://127.0.0.1:{self.workload(workload).stats_port}"

    def admin(self, workload: str, path: str, method: str = "GET", timeout: float = 5.0) -> tuple[int, str]:
        """(status, body) from the sidecar's Envoy admin API, over its private unix socket."""
        return admin_request(self.admin_socket(self.workload(workload)), path, method, timeout)

    def scrape_targets(self) -> list[ScrapeTarget]:
        return [ScrapeTarget(f"http://127.0.0.1:{w.stats_port}/stats/prometheus",
                             {"namespace": w.namespace, "pod": w.name, "workload": w.name, "app": w.app,
                              "version": w.version, "job": "envoy-stats"})
                for w in self.registry.workloads]

    def _rotated_logs(self) -> list[RotatedLog]:
        """Every sidecar's access log and how to make its Envoy reopen it (admin API on its unix socket)."""
        return [RotatedLog(self.log_dir / f"{w.namespace}.{w.name}.log",
                           lambda w=w: admin_request(self.admin_socket(w), "/reopen_logs", "POST"))
                for w in self.registry.workloads]

    def access_log_paths(self) -> list[Path]:
        if self.config.telemetry == "otel":
            return []  # access logs leave the sidecars over OTLP/gRPC, no file is written
        return [self.log_dir / f"{w.namespace}.{w.name}.log" for w in self.registry.workloads]

    def access_logs(self) -> list[AccessLog]:
        """Every sidecar's access log with its writer's workload, namespace and principal."""
        if self.config.telemetry == "otel":
            return []
        return [AccessLog(str(self.log_dir / f"{w.namespace}.{w.name}.log"), w.name, w.namespace,
                          spiffe_id(w.namespace, w.service_account)) for w in self.registry.workloads]

    def pids(self) -> dict[str, int]:
        return self.supervisor.pids() if self.supervisor else {}

    def crashes(self) -> list[dict]:
        """Each supervised process that crashed: its workloads, restart count and recent crash times/exit codes."""
        if self.supervisor is None:
            return []
        by_process: dict[str, list[Workload]] = {}
        for w in self.registry.workloads:
            for name in self._running.get(w.key, []):
                by_process.setdefault(name, []).append(w)
        restarts = self.supervisor.restarts()
        out = []
        for name, crashes in sorted(self.supervisor.crashes().items()):
            if not crashes and not restarts.get(name):
                continue
            targets = by_process.get(name) or ([w for w in self.registry.workloads if not w.is_gateway]
                                               if name == APPS_PROCESS else [])
            kind = "sidecar" if any(name == f"{w.namespace}.{w.name}" for w in targets) else "app"
            targets = [w for w in targets if kind == "app" or name == f"{w.namespace}.{w.name}"]
            out.append({"process": name, "kind": kind, "restarts": restarts.get(name, 0),
                        "workloads": [{"name": w.name, "namespace": w.namespace} for w in targets],
                        "crashes": [{"time": t, "exit_code": code} for t, code in crashes]})
        return out

    def status(self) -> dict:
        return {
            "gateway": self.gateway_url + "/productpage",
            "control_api": f"http://127.0.0.1:{self.control.port}" if self.control else None,
            "control_token_file": str(self.control_token_path) if self.control else None,
            "xds": f"https://127.0.0.1:{self.xds.port}" if self.xds else None,
            "otlp_endpoint": self.config.otlp_endpoint,
            "data_dir": str(self.data_dir),
            "scenario": self._scenario,
            "ready_seconds": round(self.ready_seconds, 3),
            "workloads": [{"name": w.name, "namespace": w.namespace, "app": w.app, "version": w.version,
                           "service_account": w.service_account, "stats": f"http://127.0.0.1:{w.stats_port}",
                           "admin_socket": str(self.admin_socket(w)),
                           "inbound_ports": w.inbound_ports, "app_ports": w.app_ports,
                           "outbound_port": w.outbound_port} for w in self.registry.workloads],
            "restarts": self.supervisor.restarts() if self.supervisor else {},
            "traffic": self.traffic.snapshot() if self.traffic else None,
            "warnings": self.warnings,
            "rejections": [asdict(r) for r in (self.xds.rejections if self.xds else [])][-20:],
        }
