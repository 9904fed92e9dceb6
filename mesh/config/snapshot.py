"""An indexed, read-only view of one set of config objects plus the mesh config.

Rules, the control plane and the UI ask the snapshot, never a list: lookups by
kind, by (kind, namespace, name), by service FQDN, and host resolution that
honours `exportTo`, are all answered from indexes built once.

An object defined more than once counts once, as its last definition (what
`kubectl apply -f` leaves); `duplicates` lists every such object for the analyzer.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from mesh.config import hosts
from mesh.config.duplicates import Duplicate, last_wins
from mesh.config.kinds import type_name
from mesh.config.meshconfig import MeshConfig
from mesh.config.model import ConfigObject
from mesh.config.workloads import Workload, labels_match, workload_of

#: Pseudo kinds for reads that are not one kind of object.
MESH_CONFIG = "MeshConfig"
WORKLOAD = "Workload"  # pods and pod-template owners

INJECTION_LABEL = "istio-injection"
REVISION_LABEL = "istio.io/rev"
INJECT_KEY = "sidecar.istio.io/inject"
AMBIENT_LABEL = "istio.io/dataplane-mode"


class Snapshot:
    """Config objects indexed for the questions rules ask."""

    def __init__(self, objects: Iterable[ConfigObject], mesh_config: MeshConfig | None = None) -> None:
        effective, duplicates = last_wins(objects)
        #: Each object once, in load order; a repeated one as its last definition.
        self.objects: list[ConfigObject] = effective
        #: Objects defined more than once (every definition, in load order).
        self.duplicates: list[Duplicate] = duplicates
        self._mesh_config = mesh_config or MeshConfig()
        self._by_kind: dict[str, list[ConfigObject]] = defaultdict(list)
        self._by_key: dict[tuple[str, str | None, str], ConfigObject] = {}
        for obj in self.objects:
            t = type_name(obj.kind, obj.api_version)
            self._by_kind[t].append(obj)
            self._by_key[(t, obj.namespace, obj.name)] = obj
        self._cache: dict[str, object] = {}
        self._reads: set[str] | None = None

    def tracking_view(self) -> Snapshot:
        """A view sharing every index that records which kinds are read (in `.reads`).

        The rule engine hands rules such a view, so a guard test can check that
        each rule declares exactly the kinds it reads.
        """
        view = object.__new__(Snapshot)
        view.__dict__.update(self.__dict__)
        view._reads = set()
        return view

    @property
    def reads(self) -> set[str]:
        return set(self._reads or ())

    def _read(self, *kinds: str) -> None:
        if self._reads is not None:
            self._reads.update(kinds)

    @property
    def mesh_config(self) -> MeshConfig:
        self._read(MESH_CONFIG)
        return self._mesh_config

    # -- lookups ------------------------------------------------------------------------------
    def of_kind(self, kind: str) -> list[ConfigObject]:
        """Objects of a type name (``Gateway`` = Istio, ``KubernetesGateway`` = Gateway API)."""
        self._read(kind)
        return self._by_kind.get(kind, [])

    def kinds(self) -> set[str]:
        return {k for k, v in self._by_kind.items() if v}

    def find(self, kind: str, namespace: str | None, name: str) -> ConfigObject | None:
        self._read(kind)
        return self._by_key.get((kind, namespace, name))

    def exists(self, kind: str, namespace: str | None, name: str) -> bool:
        self._read(kind)
        return (kind, namespace, name) in self._by_key

    @staticmethod
    def type_of(obj: ConfigObject) -> str:
        return type_name(obj.kind, obj.api_version)

    # -- services and workloads ---------------------------------------------------------------
    def services(self) -> list[ConfigObject]:
        return self.of_kind("Service")

    def service_by_fqdn(self, name: str) -> ConfigObject | None:
        self._read("Service")
        index = self._cache.get("services")
        if index is None:
            suffix = self._mesh_config.domain_suffix
            index = self._cache["services"] = {hosts.service_fqdn(s.name, s.namespace, suffix): s
                                               for s in self._by_kind.get("Service", [])}
        return index.get(name)  # type: ignore[union-attr]

    def workloads(self) -> list[Workload]:
        """Pods plus pod-template owners (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob)."""
        self._read(WORKLOAD)
        if "workloads" not in self._cache:
            self._cache["workloads"] = [w for w in map(workload_of, self.objects) if w is not None]
        return self._cache["workloads"]  # type: ignore[return-value]

    def workloads_in(self, namespace: str | None) -> list[Workload]:
        if "workloads_by_ns" not in self._cache:
            index: dict[str | None, list[Workload]] = defaultdict(list)
            for w in self.workloads():
                index[w.namespace].append(w)
            self._cache["workloads_by_ns"] = index
        self._read(WORKLOAD)
        return self._cache["workloads_by_ns"].get(namespace, [])  # type: ignore[union-attr]

    def pods(self, namespace: str | None = None, selector: dict | None = None, *, any_namespace: bool = False) -> list[Workload]:
        """Pods (not templates) matching a selector, in one namespace or all."""
        pool = self.workloads() if any_namespace else self.workloads_in(namespace)
        return [w for w in pool if w.kind == "Pod" and labels_match(selector, w.labels)]

    def matching_workloads(self, namespace: str | None, selector: dict | None, *, any_namespace: bool = False,
                           pods_only: bool = False) -> list[Workload]:
        """Workloads a label selector picks (memoized: many objects share one selector)."""
        self._read(WORKLOAD)
        sel = tuple(sorted((str(k), str(v)) for k, v in (selector or {}).items()))
        scope = "*" if any_namespace else namespace
        key = ("match", scope, sel, pods_only)
        hit = self._cache.get(key)
        if hit is None:
            if sel:
                # Intersect the label index instead of testing every workload against the selector.
                index = self._label_index()
                lists = [index.get((scope, k, v), ()) for k, v in sel]
                smallest = min(lists, key=len)
                pool = [w for w in smallest if labels_match(selector, w.labels)]
            else:
                pool = self.workloads() if any_namespace else self.workloads_in(namespace)
            hit = self._cache[key] = [w for w in pool if not pods_only or w.kind == "Pod"]
        return list(hit)  # type: ignore[arg-type]

    def _label_index(self) -> dict[tuple[str | None, str, str], list[Workload]]:
        index = self._cache.get("labels")
        if index is None:
            built: dict[tuple[str | None, str, str], list[Workload]] = defaultdict(list)
            for w in self.workloads():
                for k, v in w.labels.items():
                    built[(w.namespace, k, v)].append(w)
                    built[("*", k, v)].append(w)
            index = self._cache["labels"] = dict(built)
        return index  # type: ignore[return-value]

    # -- namespaces ---------------------------------------------------------------------------
    def namespaces(self) -> set[str]:
        """Namespaces that exist: Namespace objects plus every namespace an object lives in."""
        self._read("Namespace")
        if "namespaces" not in self._cache:
            out = {o.name for o in self._by_kind.get("Namespace", [])}
            out.update(o.namespace for o in self.objects if o.namespace)
            self._cache["namespaces"] = frozenset(out)
        return set(self._cache["namespaces"])  # type: ignore[arg-type]

    def namespace_labels(self, namespace: str | None) -> dict[str, str]:
        ns = self.find("Namespace", None, namespace) if namespace else None
        return ns.labels if ns else {}

    def in_mesh(self, w: Workload) -> bool:
        """istioctl's heuristic for "has a sidecar": injected proxy, inject label/annotation, or namespace label."""
        if w.has_proxy:
            return True
        flag = w.labels.get(INJECT_KEY, w.annotations.get(INJECT_KEY))
        if flag is not None:
            return flag == "true"
        ns = self.namespace_labels(w.namespace)
        return ns.get(INJECTION_LABEL) == "enabled" or (REVISION_LABEL in ns and ns.get(INJECTION_LABEL) != "disabled")

    def namespace_is_ambient(self, namespace: str | None) -> bool:
        """Ambient enrolment by namespace label, unless the namespace also asks for sidecar injection."""
        ns = self.namespace_labels(namespace)
        if INJECTION_LABEL in ns or REVISION_LABEL in ns:
            return False
        return ns.get(AMBIENT_LABEL) == "ambient"

    def is_ambient(self, w: Workload) -> bool:
        if w.annotations.get("ambient.istio.io/redirection") == "enabled":
            return True
        return self.namespace_is_ambient(w.namespace)

    # -- hosts --------------------------------------------------------------------------------
    def fqdn(self, host: str, namespace: str | None) -> str:
        return hosts.fqdn(host, namespace, self._mesh_config.domain_suffix)

    def visible(self, obj: ConfigObject, from_namespace: str | None) -> bool:
        return hosts.visible(obj, from_namespace)

    def service_entry_hosts(self) -> tuple[dict[str, list[ConfigObject]], list[tuple[str, ConfigObject]]]:
        """ServiceEntries by host FQDN: (exact hosts -> entries, [(wildcard host, entry)])."""
        self._read("ServiceEntry")
        if "se_hosts" not in self._cache:
            exact: dict[str, list[ConfigObject]] = defaultdict(list)
            wild: list[tuple[str, ConfigObject]] = []
            for se in self._by_kind.get("ServiceEntry", []):
                se_hosts = se.spec.get("hosts")
                for h in se_hosts if isinstance(se_hosts, list) else []:
                    if isinstance(h, str) and h:
                        fq = self.fqdn(h, se.namespace)
                        (wild.append((fq, se)) if fq.startswith("*") else exact[fq].append(se))
            self._cache["se_hosts"] = (dict(exact), wild)
        return self._cache["se_hosts"]  # type: ignore[return-value]

    def service_entries_for(self, host: str, from_namespace: str | None) -> list[ConfigObject]:
        """ServiceEntries visible from a namespace with a host that covers or equals `host`."""
        out = []
        for se in self.of_kind("ServiceEntry"):
            se_hosts = se.spec.get("hosts")
            if not isinstance(se_hosts, list) or not self.visible(se, from_namespace):
                continue
            if any(isinstance(h, str) and hosts.hosts_intersect(h, host) for h in se_hosts):
                out.append(se)
        return out

    def service_for_host(self, host: str, from_namespace: str | None) -> ConfigObject | None:
        """The Kubernetes Service a host names (after FQDN resolution), if visible from the namespace."""
        svc = self.service_by_fqdn(self.fqdn(host, from_namespace))
        return svc if svc is not None and self.visible(svc, from_namespace) else None

    def host_known(self, host: str, from_namespace: str | None) -> bool:
        """Whether a host resolves to a Service or a ServiceEntry visible from the namespace."""
        return self.service_for_host(host, from_namespace) is not None or bool(
            self.service_entries_for(self.fqdn(host, from_namespace), from_namespace))
