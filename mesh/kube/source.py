"""Read-only list/watch of a cluster's Kubernetes and Istio objects into ConfigObjects.

One list per kind across all namespaces (paged), then one watch per kind from the
list's resourceVersion. BOOKMARK events advance the resourceVersion; an ERROR 410
(Gone: the version fell out of the server's window) triggers a relist of that
kind; a dropped connection reconnects with exponential backoff from the last
version seen. Nothing here writes to the cluster.

Kinds served later are found without a restart: every `discovery_interval` seconds the served resources
are read (aggregated discovery: `GET /apis`, one request revalidated with the server's ETag; else the
group list and one request per group/version meshscope reads), a kind that became served is listed and
watched (Istio or the Gateway API CRDs installed after meshscope started), and one no longer served is
listed again, which finds it gone and drops its objects. A watch answered 404 (its CRD deleted) does the
same. A server without the discovery endpoint gets each unserved kind's list tried instead.

No object stops a kind's updates (#18): a list item or watch event meshscope cannot read is
skipped and counted per kind and reason (with one kept sample, and `on_malformed` for the
process-wide counters), the rest of the list or stream is read, and a watch round that raises
anything is counted and retried from the last resourceVersion seen.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mesh.config import limits
from mesh.config.model import ConfigObject
from mesh.kube.convert import MalformedObject, to_config_object
from mesh.kube.kinds import KINDS, KindInfo

log = logging.getLogger("meshscope.kube")

PAGE_SIZE = 500
WATCH_TIMEOUT_S = 300
DISCOVERY_INTERVAL_S = 60.0  # how often the served API groups are read again (a CRD installed after start)
# aggregated discovery (every group's resources in one answer, with an ETag) first; the group list where it is absent
_AGGREGATED_ACCEPT = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                      "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")
SAMPLE_CHARS = 256  # characters kept of a skipped object's JSON


class KubeError(Exception):
    """A Kubernetes API call failed; the message says which call and why."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass
class KindState:
    """What the source knows about one kind: the served version, the resourceVersion, health."""

    info: KindInfo
    version: str | None = None  # API version the server serves; None = not served (e.g. Istio absent)
    resource_version: str = ""
    objects: dict[tuple[str | None, str], ConfigObject] = field(default_factory=dict)
    relists: int = 0
    reconnects: int = 0
    bookmarks: int = 0
    last_error: str = ""
    malformed: dict[str, int] = field(default_factory=dict)  # skipped objects/events by reason
    malformed_sample: str = ""  # the last skipped one: reason, message and its first SAMPLE_CHARS of JSON
    failed_rounds: int = 0  # watch rounds that raised something unexpected (and were retried)
    # DELETED events whose object could not be read: "removed" (identified by uid or namespace/name and removed),
    # "not_mirrored" (named, but not kept), "relisted" (nothing identified it: the kind was listed again)
    unreadable_deletes: dict[str, int] = field(default_factory=dict)
    forbidden: bool = False  # an optional kind the credentials may not read (HTTP 403): left out


class KubeSource:
    """Mirror of the cluster objects meshscope needs, kept current by watches.

    `api_client` is a `kubernetes.client.ApiClient` (see `mesh.kube.client.api_client`).
    `namespaces` limits what is kept (the mesh root namespace is always kept,
    because mesh-wide policies live there); None keeps everything.
    """

    def __init__(
        self,
        api_client: Any,
        namespaces: Iterable[str] | None = None,
        root_namespace: str = "istio-system",
        kinds: Iterable[KindInfo] = KINDS,
        origin: str = "k8s",
        on_change: Callable[[str, str, ConfigObject | None], None] | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        request_timeout: float = 30.0,
        journal: Any = None,
        on_malformed: Callable[[str, str, str, str], None] | None = None,
        discovery_interval: float = DISCOVERY_INTERVAL_S,
    ):
        self.api = api_client
        self.namespaces = None if namespaces is None else set(namespaces) | {root_namespace}
        self.origin = origin
        self.on_change = on_change
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.request_timeout = request_timeout
        self.journal = journal  # mesh.journal.Journal: every change recorded with its managedFields "who"
        self.on_malformed = on_malformed  # (kind, reason, message, sample) per skipped object: meshscope counts it
        self._logged: set[tuple[str, str]] = set()  # (kind, reason or exception type) already logged
        self._resumed_gap = False  # one gap marker when a restart lists over an existing journal
        self.kinds = {k.key: KindState(k) for k in kinds}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._responses: set[Any] = set()
        self.discovery_interval = discovery_interval  # 0 = never look again (served kinds fixed at start)
        self._watchers: dict[str, threading.Thread] = {}  # kind key -> its running watch thread
        self._discovery_etag = ""
        self._discovered: frozenset[str] | None = None  # "group/version/plural" served at the last look
        self.discoveries = 0  # discovery rounds that found a change (kinds listed again)

    # ---- reading -------------------------------------------------------------
    def objects(self) -> list[ConfigObject]:
        """Every object currently mirrored, all kinds."""
        with self._lock:
            return [o for st in self.kinds.values() for o in st.objects.values()]

    def status(self) -> dict[str, dict[str, Any]]:
        """Per kind: served version, resourceVersion, counts of objects, relists, reconnects, last error."""
        with self._lock:
            return {
                k: {
                    "version": st.version,
                    "resource_version": st.resource_version,
                    "objects": len(st.objects),
                    "relists": st.relists,
                    "reconnects": st.reconnects,
                    "bookmarks": st.bookmarks,
                    "last_error": st.last_error,
                    "malformed": dict(st.malformed),
                    "malformed_sample": st.malformed_sample,
                    "failed_rounds": st.failed_rounds,
                    "unreadable_deletes": dict(st.unreadable_deletes),
                    "forbidden": st.forbidden,
                }
                for k, st in self.kinds.items()
            }

    # ---- listing -------------------------------------------------------------
    def list_all(self) -> list[ConfigObject]:
        """List every kind once (what `meshscope analyze --kubeconfig` needs); returns all objects."""
        for st in self.kinds.values():
            self._relist(st)
        return self.objects()

    def _keep(self, obj: ConfigObject) -> bool:
        """Whether the namespace selection keeps an object; cluster-scoped ones (a GatewayClass) belong to every
        selection, Namespaces to their own."""
        if self.namespaces is None:
            return True
        if obj.kind == "Namespace":
            return obj.name in self.namespaces
        return obj.namespace is None or obj.namespace in self.namespaces

    def _relist(self, st: KindState) -> None:
        # the served version first; when it is gone (a CRD that dropped it), the kind's other versions before it is
        # called not served: the objects never disappear for a round when only the version moved
        versions = (st.version, *(v for v in st.info.versions if v != st.version)) if st.version else st.info.versions
        last: KubeError | None = None
        for version in versions:
            try:
                items, rv = self._list(st.info, version)
            except KubeError as exc:
                if exc.status == 404:  # this version (or the CRD) is not served: try the next one
                    last = exc
                    continue
                if exc.status == 403 and st.info.optional:  # a role without this add-on kind: read the rest
                    with self._lock:
                        st.version, st.objects, st.forbidden = None, {}, True
                        st.last_error = f"{st.info.key}: not readable with these credentials ({exc})"
                    log.info("%s may not be read with these credentials; skipping it", st.info.key)
                    return
                with self._lock:
                    st.last_error = str(exc)
                raise
            objs = {}
            metas = {}
            for item in items:
                try:
                    o = to_config_object(item, st.info.api_version(version), st.info.kind, self.origin)
                except MalformedObject as exc:
                    self._skip(st, exc.reason, str(exc), item)
                    continue
                if self._keep(o):
                    objs[(o.namespace, o.name)] = o
                    metas[(o.namespace, o.name)] = item.get("metadata")
            with self._lock:
                relisted = st.relists > 0
                st.version, st.resource_version, st.objects, st.forbidden = version, rv, objs, False
                st.relists += 1
                st.last_error = ""
            if self.journal is not None:
                self._journal_relist(st.info.key, [(o, metas[k]) for k, o in objs.items()], relisted)
            if self.on_change:
                self.on_change(st.info.key, "RELIST", None)
            return
        with self._lock:
            was, st.version = st.version, None
            gone, st.objects = st.objects, {}
            st.last_error = f"{st.info.key}: not served by this cluster ({last})"
        log.info("%s is not served by the cluster; skipping it", st.info.key)
        if was is None:
            return
        # served before (its CRD was deleted): its objects are gone with it
        log.warning("%s is no longer served by the cluster; its %d objects are dropped", st.info.key, len(gone))
        if self.journal is not None:
            for o in gone.values():
                self._journal_event(st.info.key, o, True, None)
        if self.on_change:
            self.on_change(st.info.key, "RELIST", None)

    def _list(self, info: KindInfo, version: str) -> tuple[list[dict], str]:
        """Every item of a kind, paged. A continue token that expired between pages (HTTP 410: the server compacted
        the version the pages were read at) restarts the list whole, without paging, as client-go's pager does:
        pages of two versions would mix objects deleted or changed in between."""
        items: list[dict] = []
        cont = ""
        paged = True
        while True:
            query = ([("limit", str(PAGE_SIZE))] if paged else []) + ([("continue", cont)] if cont else [])
            try:
                body = self._get_json(info.path(version), query)
            except KubeError as exc:
                if exc.status != 410 or not cont:
                    raise
                log.info("list of %s: the continue token expired (%s); listing again in one request", info.key, exc)
                items, cont, paged = [], "", False
                continue
            page = body.get("items") or []
            meta = body.get("metadata") or {}
            if not isinstance(page, list) or not isinstance(meta, dict):  # the whole answer is unusable
                raise KubeError(f"GET {info.path(version)}: a {info.key} list whose items are not a list "
                                "or whose metadata is not an object")
            items.extend(page)
            cont = meta.get("continue") or ""
            if not cont:
                return items, str(meta.get("resourceVersion") or "")

    # ---- HTTP ----------------------------------------------------------------
    def _request(self, path: str, query: list[tuple[str, str]], timeout: float | tuple[float, float],
                 headers: dict[str, str] | None = None) -> Any:
        from kubernetes.client.exceptions import ApiException

        params = self.api.param_serialize(method="GET", resource_path=path, query_params=query,
                                          header_params={"Accept": "application/json", **(headers or {})},
                                          auth_settings=["BearerToken"])
        try:
            resp = self.api.call_api(*params, _request_timeout=timeout)
        except ApiException as exc:
            raise KubeError(f"GET {path}: HTTP {exc.status} {exc.reason}", exc.status) from None
        except Exception as exc:  # connection refused, DNS, TLS, timeouts
            raise KubeError(f"GET {path}: {type(exc).__name__}: {exc}") from None
        raw = getattr(resp, "response", resp)
        status = getattr(raw, "status", None) or getattr(resp, "status", None)
        if status and status >= 400:
            data = raw.read() if hasattr(raw, "read") else b""
            raw.release_conn() if hasattr(raw, "release_conn") else None
            reason = _status_message(data) or getattr(raw, "reason", "")
            raise KubeError(f"GET {path}: HTTP {status} {reason}", status)
        return raw

    def _get_json(self, path: str, query: list[tuple[str, str]]) -> dict:
        raw = self._request(path, query, self.request_timeout)
        data = raw.data if hasattr(raw, "data") else raw.read()
        try:
            body = limits.loads_json(data, f"GET {path}: the response")
        except limits.InputLimitError as exc:
            raise KubeError(str(exc)) from None
        except ValueError as exc:
            raise KubeError(f"GET {path}: response is not JSON ({exc})") from None
        if not isinstance(body, dict):
            raise KubeError(f"GET {path}: response is not a JSON object")
        return body

    # ---- watching ------------------------------------------------------------
    def start(self) -> None:
        """List everything, then keep it current with one watch thread per served kind."""
        self.list_all()
        self._stop.clear()
        if self.discovery_interval > 0:
            try:  # what is served now: the first look for a change compares against it
                self._served_resources()
            except KubeError as exc:
                log.info("API discovery (GET /apis) failed at start: %s; served kinds are probed instead", exc)
        for st in self.kinds.values():
            self._ensure_watch(st)
        if self.discovery_interval > 0:
            t = threading.Thread(target=self._discovery_loop, name="kube-discovery", daemon=True)
            t.start()
            self._threads.append(t)

    def _ensure_watch(self, st: KindState) -> None:
        """Start `st`'s watch thread unless it is not served or one runs already."""
        with self._lock:
            if st.version is None or self._stop.is_set() or st.info.key in self._watchers:
                return
            t = threading.Thread(target=self._watch_loop, args=(st,), name=f"kube-watch-{st.info.key}", daemon=True)
            self._watchers[st.info.key] = t
            self._threads.append(t)
        t.start()

    # ---- discovery: kinds served after start, or no longer ---------------------------------------------
    def _discovery_loop(self) -> None:
        while not self._stop.wait(self.discovery_interval):
            try:
                self.rediscover()
            except Exception as exc:  # noqa: BLE001 - a failed look is tried again next interval
                self._log_once_global("discovery", "API discovery failed: %s; trying again every %gs "
                                      "(logged once)", exc, self.discovery_interval)

    def rediscover(self) -> list[str]:
        """Look at what the server serves now; list and watch kinds that became served, list again those that
        stopped being served (which drops their objects). Returns the keys of the kinds it listed.

        Compared per resource, not per group: deleting one CRD of a group leaves the group served, and a CRD
        deleted and installed again between two looks (an upgrade) leaves the answer unchanged while the
        kind's watch has already dropped it."""
        try:
            served = self._served_resources()
        except KubeError as exc:
            if exc.status not in (404, 403, 401, 406):
                raise
            served = None  # no discovery endpoint (or not readable): try each unserved kind's list instead
        listed = []
        for st in self.kinds.values():
            if st.forbidden:
                continue
            if st.version is None:
                if served is not None and not any(self._resource(st.info, v) in served for v in st.info.versions):
                    continue
            elif served is None or self._resource(st.info, st.version) in served:
                continue
            try:
                self._relist(st)
            except KubeError as exc:
                log.warning("listing %s after discovery failed: %s", st.info.key, exc)
                continue
            listed.append(st.info.key)
            self._ensure_watch(st)
        now_served = [k for k in listed if self.kinds[k].version]
        if now_served:
            self.discoveries += 1
            log.warning("the cluster now serves %s: watching", ", ".join(now_served))
        return listed

    @staticmethod
    def _resource(info: KindInfo, version: str) -> str:
        return f"{info.api_version(version)}/{info.plural}"

    def _served_resources(self) -> frozenset[str]:
        """Every "group/version/plural" the server serves (the core API's kinds are always served).

        One request where the server has aggregated discovery (`GET /apis` as an APIGroupDiscoveryList, Kubernetes
        1.26+; revalidated with its ETag, so an unchanged answer is a 304 with no body). Otherwise the group list
        plus one `GET /apis/<group>/<version>` per served group/version of a kind meshscope reads."""
        headers = {"Accept": _AGGREGATED_ACCEPT}
        if self._discovery_etag:
            headers["If-None-Match"] = self._discovery_etag
        try:
            raw = self._request("/apis", [], self.request_timeout, headers)
        except KubeError as exc:
            if exc.status == 304 and self._discovered is not None:
                return self._discovered
            raise
        status = getattr(raw, "status", None)
        data = raw.data if hasattr(raw, "data") else raw.read()
        if status == 304 and self._discovered is not None:
            return self._discovered
        body = self._discovery_json("/apis", data)
        served = {self._resource(st.info, v) for st in self.kinds.values() if not st.info.group for v in st.info.versions}
        if body.get("kind") == "APIGroupDiscoveryList":
            for group in body.get("items") if isinstance(body.get("items"), list) else []:
                meta = group.get("metadata") if isinstance(group, dict) else None
                name = meta.get("name") if isinstance(meta, dict) else None
                versions = group.get("versions") if isinstance(group, dict) else None
                for v in versions if isinstance(name, str) and isinstance(versions, list) else []:
                    resources = v.get("resources") if isinstance(v, dict) else None
                    for r in resources if isinstance(resources, list) else []:
                        plural = r.get("resource") if isinstance(r, dict) else None
                        if isinstance(plural, str) and isinstance(v.get("version"), str):
                            served.add(f"{name}/{v['version']}/{plural}")
            etag = getattr(raw, "headers", {}).get("ETag") if hasattr(getattr(raw, "headers", None), "get") else None
            self._discovery_etag = str(etag or "")
        else:
            groups = body.get("groups")
            if not isinstance(groups, list):
                raise KubeError("GET /apis: the discovery answer has no list of groups")
            wanted = {st.info.api_version(v) for st in self.kinds.values() if st.info.group for v in st.info.versions}
            for g in groups:
                versions = g.get("versions") if isinstance(g, dict) else None
                for v in versions if isinstance(versions, list) else []:
                    gv = v.get("groupVersion") if isinstance(v, dict) else None
                    if gv in wanted:
                        served |= self._group_version_resources(gv)
        self._discovered = frozenset(served)
        return self._discovered

    def _group_version_resources(self, gv: str) -> set[str]:
        """The "group/version/plural" of one served group/version (its APIResourceList), subresources left out."""
        raw = self._request(f"/apis/{gv}", [], self.request_timeout)
        body = self._discovery_json(f"/apis/{gv}", raw.data if hasattr(raw, "data") else raw.read())
        resources = body.get("resources")
        return {f"{gv}/{r['name']}" for r in resources if isinstance(r, dict) and isinstance(r.get("name"), str)
                and "/" not in r["name"]} if isinstance(resources, list) else set()

    @staticmethod
    def _discovery_json(path: str, data: bytes) -> dict:
        try:
            body = limits.loads_json(data, f"GET {path}: the response")
        except (limits.InputLimitError, ValueError) as exc:
            raise KubeError(f"GET {path}: unreadable discovery answer ({exc})") from None
        if not isinstance(body, dict):
            raise KubeError(f"GET {path}: the discovery answer is not a JSON object")
        return body

    def _log_once_global(self, key: str, msg: str, *args: Any) -> None:
        if ("*", key) in self._logged:
            return
        self._logged.add(("*", key))
        log.warning(msg, *args)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for r in list(self._responses):
            try:
                r.shutdown() if hasattr(r, "shutdown") else r.close()
            except Exception:
                pass
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()
        with self._lock:
            self._watchers.clear()

    def _watch_loop(self, st: KindState) -> None:
        delay = self.backoff_initial
        while not self._stop.is_set():
            if st.version is None:  # a relist found the kind no longer served (or readable): nothing to watch
                with self._lock:  # unless discovery listed it again meanwhile; else it may start a new watch
                    if st.version is None:
                        self._watchers.pop(st.info.key, None)
                        return
                continue
            try:
                for event in self._watch(st):
                    delay = self.backoff_initial
                    if self._stop.is_set():
                        return
                    self._apply_one(st, event)
                    if st.last_error:
                        with self._lock:
                            st.last_error = ""  # the watch is healthy again
                # the server ended the watch (its timeout): watch again from the last version
                if self._stop.wait(self.backoff_initial):
                    return
                continue
            except _Gone:
                try:
                    self._relist(st)
                    continue
                except KubeError as exc:
                    log.warning("relist of %s failed: %s", st.info.key, exc)
                except Exception as exc:  # noqa: BLE001 - as below: the relist is part of the round
                    self._round_failed(st, exc)
            except KubeError as exc:
                if exc.status == 404:  # the collection is gone (its CRD deleted): listing says so and drops it
                    try:
                        self._relist(st)
                        continue
                    except KubeError as relist_exc:
                        exc = relist_exc
                with self._lock:
                    st.last_error = str(exc)
                log.warning("watch of %s failed: %s; retrying in %.1fs", st.info.key, exc, delay)
            except Exception as exc:  # noqa: BLE001 - an unexpected failure must not end this kind's watch (#18)
                self._round_failed(st, exc)
            if self._stop.wait(delay):
                return
            with self._lock:
                st.reconnects += 1
            delay = min(delay * 2, self.backoff_max)

    def _round_failed(self, st: KindState, exc: Exception) -> None:
        """Count a watch round that raised something unexpected; the loop retries from the kept version."""
        with self._lock:
            st.failed_rounds += 1
            st.last_error = f"watch {st.info.key}: {type(exc).__name__}: {exc}"
        self._log_once(st, type(exc).__name__, "watch of %s: a round failed (%s: %s); retrying from "
                       "resourceVersion %s (logged once per exception type)", st.info.key,
                       type(exc).__name__, exc, st.resource_version, exc_info=exc)

    def _apply_one(self, st: KindState, event: Any) -> None:
        """Apply one event; one that cannot be applied is skipped and counted, the stream goes on."""
        try:
            self._apply_event(st, event)
        except (_Gone, KubeError):
            raise
        except MalformedObject as exc:
            self._skip(st, exc.reason, str(exc), event)
        except Exception as exc:  # noqa: BLE001 - e.g. an on_change or journal bug: this event only (#18)
            self._skip(st, "apply_failed", f"{type(exc).__name__}: {exc}", event)
            self._log_once(st, type(exc).__name__, "watch of %s: applying an event failed", st.info.key, exc_info=exc)

    def _skip(self, st: KindState, reason: str, message: str, item: Any) -> None:
        """Count one unreadable object or event of `st`'s kind, keep it as the sample, tell `on_malformed`."""
        sample = _sample(item)
        with self._lock:
            st.malformed[reason] = st.malformed.get(reason, 0) + 1
            st.malformed_sample = f"{reason}: {message}: {sample}"
        self._log_once(st, reason, "%s: skipped an object that cannot be read (%s: %s); the rest is read "
                       "(logged once per kind and reason)", st.info.key, reason, message)
        if self.on_malformed is not None:
            try:
                self.on_malformed(st.info.key, reason, message, sample)
            except Exception:  # noqa: BLE001 - counting must never stop the source
                log.exception("counting a skipped %s failed", st.info.key)

    def _log_once(self, st: KindState, key: str, msg: str, *args: Any, exc_info: Any = None) -> None:
        if (st.info.key, key) in self._logged:
            return
        self._logged.add((st.info.key, key))
        log.warning(msg, *args, exc_info=exc_info)

    def _watch(self, st: KindState) -> Iterator[dict]:
        assert st.version
        query = [("watch", "true"), ("allowWatchBookmarks", "true"), ("timeoutSeconds", str(WATCH_TIMEOUT_S))]
        if st.resource_version:
            query.append(("resourceVersion", st.resource_version))
        try:
            raw = self._request(st.info.path(st.version), query, (self.request_timeout, WATCH_TIMEOUT_S + 10))
        except KubeError as exc:
            if exc.status == 410:  # the version is gone, said as the answer's status instead of an ERROR event
                raise _Gone() from None
            raise
        self._responses.add(raw)
        try:
            buf = b""
            cap = limits.max_event_bytes()
            for chunk in raw.stream(65536, decode_content=True):
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        yield from self._decoded(st, line)
                if len(buf) > cap:  # one event without its newline past the cap: never buffer it whole
                    raise KubeError(f"watch {st.info.key}: an event exceeds the {limits.human_bytes(cap)} "
                                    "event limit (MESHSCOPE_MAX_EVENT_BYTES); dropped the stream")
            if buf.strip():
                yield from self._decoded(st, buf)
        except KubeError:
            raise
        except Exception as exc:  # socket errors, urllib3 protocol errors when the stream is dropped
            if self._stop.is_set():
                return
            raise KubeError(f"watch {st.info.key}: stream broke: {type(exc).__name__}: {exc}") from None
        finally:
            self._responses.discard(raw)
            try:
                raw.release_conn()
            except Exception:
                pass

    def _decoded(self, st: KindState, line: bytes) -> Iterator[dict]:
        """One line of the stream as an event; a line that is no JSON object (or over the input limits) is
        skipped and counted: the stream stays in step, events are newline-delimited."""
        try:
            event = limits.loads_json(line, f"watch {st.info.key}: an event")
        except limits.InputLimitError as exc:
            self._skip(st, "event_over_limit", str(exc), line)
            return
        except ValueError as exc:
            self._skip(st, "undecodable_event", f"watch {st.info.key}: undecodable event ({exc})", line)
            return
        if not isinstance(event, dict):
            self._skip(st, "undecodable_event", f"watch {st.info.key}: event is a {type(event).__name__}, "
                       "not a JSON object", line)
            return
        yield event

    def _apply_event(self, st: KindState, event: dict) -> None:
        etype = event.get("type")
        obj = event.get("object")
        if etype == "ERROR":
            obj = obj if isinstance(obj, dict) else {}
            code = obj.get("code")
            if code == 410:
                raise _Gone()
            raise KubeError(f"watch {st.info.key}: server error {code}: {obj.get('message', '')}",
                            code if isinstance(code, int) else None)
        if not isinstance(obj, dict):
            exc = MalformedObject("not_an_object", f"the {etype} event's object is a {type(obj).__name__}, not an object")
            if etype == "DELETED":
                self._delete_unreadable(st, {}, exc, obj)
            raise exc
        rv = _resource_version(obj.get("metadata"))
        if etype == "BOOKMARK":
            with self._lock:
                st.resource_version = rv or st.resource_version
                st.bookmarks += 1
            return
        if etype not in ("ADDED", "MODIFIED", "DELETED"):
            raise MalformedObject("unknown_event_type", f"unknown event type {str(etype)[:40]!r}")
        try:
            o = to_config_object(obj, st.info.api_version(st.version or ""), st.info.kind, self.origin)
        except MalformedObject as exc:
            if rv:  # the event was seen: a reconnect resumes after it
                with self._lock:
                    st.resource_version = rv
            if etype == "DELETED":  # the object is gone all the same: never leave it mirrored
                self._delete_unreadable(st, obj, exc)
            raise
        with self._lock:
            if rv:
                st.resource_version = rv
            if not self._keep(o):
                return
            if etype == "DELETED":
                st.objects.pop((o.namespace, o.name), None)
            else:
                st.objects[(o.namespace, o.name)] = o
        if self.journal is not None:
            self._journal_event(st.info.key, o, etype == "DELETED", obj.get("metadata"))
        if self.on_change:
            self.on_change(st.info.key, etype, o)

    def _delete_unreadable(self, st: KindState, obj: dict, exc: MalformedObject, sent: Any = None) -> None:
        """A DELETED event whose object cannot be read removes the mirrored object it can still be told apart by:
        its uid, else its namespace and name where those are readable. When nothing identifies it the kind is
        listed again (the only answer that says what is gone); the event itself is counted as skipped either way."""
        meta = obj.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        uid, name, ns = meta.get("uid"), meta.get("name"), meta.get("namespace")
        named = isinstance(name, str) and bool(name) and (ns is None or isinstance(ns, str))
        with self._lock:
            key = None
            if isinstance(uid, str) and uid:
                key = next((k for k, o in st.objects.items() if isinstance(o.raw.get("metadata"), dict)
                            and o.raw["metadata"].get("uid") == uid), None)
            if key is None and named:
                key = (ns, name)
            gone = st.objects.pop(key, None) if key is not None else None
            # named but not mirrored: outside the kept namespaces, or skipped when listed; nothing to remove
            outcome = "removed" if gone is not None else "not_mirrored" if named else "relisted"
            st.unreadable_deletes[outcome] = st.unreadable_deletes.get(outcome, 0) + 1
        if outcome == "relisted":
            self._skip(st, exc.reason, str(exc), {"type": "DELETED", "object": obj if sent is None else sent})
            self._log_once(st, "unreadable_delete", "watch of %s: a DELETED event names no object that can be "
                           "found (%s); listing the kind again", st.info.key, exc)
            raise _Gone()
        if gone is None:
            return
        if self.journal is not None:
            self._journal_event(st.info.key, gone, True, meta)
        if self.on_change:
            self.on_change(st.info.key, "DELETED", gone)

    # ---- config journal ------------------------------------------------------
    def _journal_event(self, kind: str, o: ConfigObject, deleted: bool, meta: dict | None, initial: bool = False) -> None:
        """`meta` is the API's metadata (the ConfigObject drops managedFields, which say who changed it); `kind` is the
        kind's key (`KindInfo.key`), so a Gateway API Gateway and an Istio Gateway of one name stay two objects."""
        from mesh.journal import content_of, who_from_managed_fields
        meta = meta if isinstance(meta, dict) else {}
        who, stamp = who_from_managed_fields(meta)
        if deleted:
            who = "deleted (the watch does not say by whom)"
        try:
            self.journal.observe(kind, o.namespace, o.name, None if deleted else
                                 content_of(o.spec, o.labels, o.annotations), who=who, deleted=deleted,
                                 resource_version=str(meta.get("resourceVersion") or "") or None,
                                 generation=meta.get("generation") if isinstance(meta.get("generation"), int) else None,
                                 source_time=None if deleted or initial else stamp, api_version=o.api_version,
                                 initial=initial)
        except Exception as exc:  # noqa: BLE001 - the journal must never stop the watch
            log.warning("config journal: %s %s/%s not recorded: %s", kind, o.namespace, o.name, exc)

    def _journal_relist(self, kind: str, objs: list[tuple[ConfigObject, Any]], after_gone: bool) -> None:
        """A list is compared with the journal: only real differences are recorded, a 410 is a gap marker."""
        known = [k for k in self.journal.known() if k[0] == kind]
        if after_gone:
            self.journal.gap(None, reason=f"{kind}: watch expired (410 Gone) and was relisted; "
                                          "intermediate versions of changed objects are not known")
        elif known and not self._resumed_gap:
            self._resumed_gap = True
            self.journal.gap(None, reason="meshscope was not watching: a change made meanwhile shows as one "
                                          "update at the restart, its intermediate versions are not known")
        initial = not known
        seen = set()
        for o, meta in objs:
            seen.add((o.namespace or None, o.name))
            self._journal_event(kind, o, False, meta, initial=initial)
        for _, ns, name in known:
            if (ns, name) not in seen:
                self.journal.observe(kind, ns, name, None, deleted=True,
                                     who="deleted while not watched (found missing on relist)")


class _Gone(Exception):
    """The watch's resourceVersion is too old (HTTP 410): relist."""


def _resource_version(meta: Any) -> str:
    """An object's resourceVersion, or "" when its metadata or version is of no usable type."""
    rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return str(rv) if isinstance(rv, (str, int)) and not isinstance(rv, bool) else ""


def _sample(item: Any) -> str:
    """The first SAMPLE_CHARS of a skipped object or event, as JSON (bytes as escaped text)."""
    if isinstance(item, (bytes, bytearray)):
        text = bytes(item[:SAMPLE_CHARS * 4]).decode("utf-8", errors="backslashreplace")
    else:
        try:
            text = json.dumps(item, default=repr)
        except (TypeError, ValueError, RecursionError):
            text = repr(item)
    return text[:SAMPLE_CHARS] + ("..." if len(text) > SAMPLE_CHARS else "")


def _status_message(data: bytes) -> str:
    try:
        body = json.loads(data)
        return str(body.get("message") or body.get("reason") or "")
    except (ValueError, AttributeError):
        return ""
