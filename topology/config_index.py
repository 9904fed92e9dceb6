"""One config snapshot indexed for the questions appenders ask per graph node.

Why: a real cluster holds thousands of VirtualServices, DestinationRules and
workloads, and its graph thousands of nodes; answering per node by scanning the
snapshot (`config_view`'s reference functions) costs nodes x objects, tens of
seconds at 10,000 pods. Here each kind is indexed once per snapshot (hosts ->
VirtualServices/DestinationRules/ServiceEntries, (namespace, name) ->
workload, namespace -> PeerAuthentications in precedence order) and answers
are memoized per distinct key (host, version, workload identity), so a graph
costs config objects + distinct keys, not their product.

`index_for(snapshot)` keeps one index per Snapshot object (weakly, so it goes
with the snapshot): every graph built or refreshed from the same snapshot reuses
it. A Snapshot is read-only by contract; a changed config is a new Snapshot.
"""
from __future__ import annotations

import threading
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from topology import attrs as A
from topology import config_view, model


class HostIndex:
    """Objects by the host patterns they name: which objects cover a host, without a scan.

    A pattern covers a host when it equals it, is `*`, or is `*.suffix` and the host
    ends with `.suffix` (`mesh.config.hosts.host_covers`); so a lookup is the exact
    entry, the `*` entries and one probe per dot of the host. Results keep the
    objects' snapshot order, as a scan would return them.
    """

    def __init__(self, objects: list[Any], patterns: Callable[[Any], Iterable[str]]) -> None:
        self.objects = objects
        self._exact: dict[str, list[int]] = defaultdict(list)
        self._wild: dict[str, list[int]] = defaultdict(list)  # "*.a.b" keyed by ".a.b"
        self._star: list[int] = []
        for pos, obj in enumerate(objects):
            for p in patterns(obj):
                self._exact[p].append(pos)
                if p == "*":
                    self._star.append(pos)
                elif p.startswith("*."):
                    self._wild[p[1:]].append(pos)
        self._memo: dict[str, tuple[int, ...]] = {}

    def positions(self, host: str) -> tuple[int, ...]:
        """Snapshot-order positions of the objects covering `host` (memoized per host)."""
        hit = self._memo.get(host)
        if hit is None:
            found = set(self._exact.get(host, ()))
            found.update(self._star)
            if self._wild:
                i = host.find(".")
                while i >= 0:
                    found.update(self._wild.get(host[i:], ()))
                    i = host.find(".", i + 1)
            hit = self._memo[host] = tuple(sorted(found))
        return hit

    def covering(self, host: str) -> list[Any]:
        return [self.objects[p] for p in self.positions(host)]


class ConfigIndex:
    """What a snapshot says about nodes, answered from indexes built once (see the module doc)."""

    def __init__(self, snapshot: Any) -> None:
        # held weakly: index_for's cache maps snapshot -> index, and an index holding its key
        # strongly would keep every snapshot ever graphed alive
        try:
            self._snapshot: Callable[[], Any] = weakref.ref(snapshot)
        except TypeError:
            self._snapshot = lambda: snapshot

        def fq_hosts(obj: Any) -> list[str]:
            return [snapshot.fqdn(h, obj.namespace) for h in config_view.object_hosts(obj)]

        self.virtual_services = HostIndex(
            [vs for vs in snapshot.of_kind("VirtualService") if config_view.mesh_bound(vs)], fq_hosts)
        self.destination_rules = HostIndex(list(snapshot.of_kind("DestinationRule")), fq_hosts)
        # ServiceEntry hosts are compared as written (short names are not expanded), as the appender always did
        self.service_entries = HostIndex(list(snapshot.of_kind("ServiceEntry")), service_entry_hosts)

        self._first: dict[tuple[str | None, str], Any] = {}  # first workload by (namespace, name), snapshot order
        self._last: dict[tuple[str | None, str], Any] = {}  # last one (what a dict built over the list keeps)
        for w in snapshot.workloads():
            key = (w.namespace, w.name)
            self._first.setdefault(key, w)
            self._last[key] = w
        self.apps = {(w.namespace, w.labels.get("app")) for w in self._last.values()}

        scoped: dict[str | None, list[Any]] = defaultdict(list)
        wide: dict[str | None, list[Any]] = defaultdict(list)
        for pa in snapshot.of_kind("PeerAuthentication"):
            (scoped if (pa.spec or {}).get("selector") else wide)[pa.namespace].append(pa)
        # precedence within a level: by name (stable for equal names); PAs without a usable mode inherit
        self._pa_scoped = {ns: [(pa.spec["selector"], m) for pa in sorted(pas, key=_name)
                                if (m := config_view._mode(pa))] for ns, pas in scoped.items()}
        self._pa_namespace = {ns: next((m for pa in sorted(pas, key=_name) if (m := config_view._mode(pa))), None)
                              for ns, pas in wide.items()}
        self._pa_mesh = self._pa_namespace.get(snapshot.mesh_config.root_namespace)

        self._fqdn: dict[tuple[str, str], str] = {}
        self._vs_badges: dict[str, frozenset[str]] = {}
        self._host_badges: dict[tuple[str, str | None], frozenset[str]] = {}
        self._intent: dict[tuple, str | None] = {}
        self._derived: dict[Any, Any] = {}

    @property
    def snapshot(self) -> Any:
        return self._snapshot()

    # -- workloads -----------------------------------------------------------------------
    def workload(self, namespace: str | None, name: str) -> Any:
        """The first workload of that name in the namespace (as `snapshot.workloads_in` lists them)."""
        return self._first.get((namespace, name))

    def last_workload(self, namespace: str | None, name: str) -> Any:
        """The last workload of that name (deadNode's lookup: a dict built over `snapshot.workloads()`)."""
        return self._last.get((namespace, name))

    def has_workload(self, namespace: str | None, name: str) -> bool:
        return (namespace, name) in self._last

    def node_labels(self, d: dict) -> dict[str, str]:
        """`config_view.node_labels` from the index."""
        wl = d.get(A.WORKLOAD)
        if model.is_ok(wl):
            w = self._first.get((d.get(A.NAMESPACE), wl))
            if w is not None:
                return dict(w.labels)
        return config_view.telemetry_labels(d)

    # -- mTLS intent ---------------------------------------------------------------------
    def mtls_mode(self, namespace: str | None, labels: dict[str, str]) -> str | None:
        """`config_view.mtls_mode`: workload selector > namespace > mesh-wide, None when nothing applies."""
        for selector, mode in self._pa_scoped.get(namespace, ()):
            if config_view._selects(selector, labels):
                return mode
        return self._pa_namespace.get(namespace) or self._pa_mesh

    def node_mtls_mode(self, d: dict) -> str | None:
        """The PeerAuthentication mode of a node's workload, memoized per (namespace, workload, app, version)."""
        key = (d.get(A.NAMESPACE), d.get(A.WORKLOAD), d.get(A.APP), d.get(A.VERSION))
        try:
            return self._intent[key]
        except KeyError:
            mode = self._intent[key] = self.mtls_mode(key[0], self.node_labels(d))
            return mode

    # -- hosts and badges ----------------------------------------------------------------
    def fqdn(self, host: str, namespace: str | None) -> str:
        key = (host, namespace)
        hit = self._fqdn.get(key)
        if hit is None:
            hit = self._fqdn[key] = self.snapshot.fqdn(host, namespace)
        return hit

    def node_hosts(self, d: dict) -> list[str]:
        """`config_view.node_hosts`: FQDNs a node serves."""
        out = [self.fqdn(svc, ns) for _, ns, svc in d.get(A.DEST_SERVICES) or []]
        if d.get(A.NODE_TYPE) == model.NT_SERVICE and model.is_ok(d.get(A.SERVICE)) and model.is_ok(d.get(A.NAMESPACE)):
            out.append(self.fqdn(d[A.SERVICE], d[A.NAMESPACE]))
        return sorted(set(out))

    def host_badges(self, host: str, version: str | None) -> frozenset[str]:
        """Badges of the mesh-bound VirtualServices and the DestinationRules (for that version) of a host."""
        key = (host, version)
        hit = self._host_badges.get(key)
        if hit is None:
            vs = self._vs_badges.get(host)
            if vs is None:
                found: set[str] = set()
                for obj in self.virtual_services.covering(host):
                    found |= config_view.vs_badges(obj)
                vs = self._vs_badges[host] = frozenset(found)
            out = set(vs)
            for dr in self.destination_rules.covering(host):
                out |= config_view.dr_badges(dr, version)
            hit = self._host_badges[key] = frozenset(out)
        return hit

    def service_entry(self, hosts: Iterable[str]) -> Any:
        """The first ServiceEntry (snapshot order) with a host pattern covering any of `hosts`, or None."""
        first = min((p for h in hosts for p in self.service_entries.positions(h)[:1]), default=None)
        return None if first is None else self.service_entries.objects[first]

    # -- anything else derived from the snapshot alone -------------------------------------
    def derived(self, key: Any, compute: Callable[[], Any]) -> Any:
        """A value computed once per snapshot (e.g. the idle-node candidates of a graph type)."""
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]

    def table(self, name: str) -> dict:
        """A memo dict owned by this snapshot's index, for per-key answers an appender derives."""
        return self.derived(("table", name), dict)


def service_entry_hosts(se: Any) -> list[str]:
    """A ServiceEntry's `hosts` as written (strings only)."""
    value = (se.spec or {}).get("hosts") or []
    return [h for h in value if isinstance(h, str)] if isinstance(value, (list, tuple)) else []


def _name(obj: Any) -> str:
    return obj.name


_INDEXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def index_for(snapshot: Any) -> ConfigIndex | None:
    """The index of a snapshot, built on first use and shared while the snapshot lives (None for None)."""
    if snapshot is None:
        return None
    try:
        with _LOCK:
            hit = _INDEXES.get(snapshot)
    except TypeError:  # not weak-referenceable: index it for this use only
        return ConfigIndex(snapshot)
    if hit is None:
        hit = ConfigIndex(snapshot)
        with _LOCK:
            hit = _INDEXES.setdefault(snapshot, hit)
    return hit
