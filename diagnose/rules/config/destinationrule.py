"""DestinationRule routing rules (TLS settings are the security rules' job): hosts, subsets, duplicates."""
from __future__ import annotations

from collections import defaultdict

from diagnose.context import Context
from diagnose.rule import Metadata
from diagnose.rules.config.util import as_dict, as_list, as_str, lookup_host, selector_labels, visible_namespaces
from mesh.config import ConfigObject, Snapshot, Workload
from mesh.config.hosts import host_covers

DR = "DestinationRule"


def _subset_matches(labels: dict[str, str], w: Workload, node_labels: dict[str, str]) -> bool:
    """Subset labels against pod labels plus its node's topology labels; an empty value never matches."""
    merged = {**node_labels, **w.labels}
    return all(v != "" and merged.get(k) == v for k, v in labels.items())


def _backends(snap: Snapshot, target: ConfigObject) -> tuple[list[Workload], dict[str, str]] | None:
    """The workloads behind a Service or a ServiceEntry with a workloadSelector (None = unknown)."""
    if target.kind == "Service":
        sel = selector_labels(target.spec.get("selector"))
        ns = target.namespace
        extra: dict[str, str] = {}
    else:
        sel = selector_labels(as_dict(target.spec.get("workloadSelector")).get("labels"))
        ns, extra = target.namespace, {}
    if not sel:
        return None
    return snap.matching_workloads(ns, sel), extra


class SubsetSelectsPods:
    """A DestinationRule host must exist; each subset's labels must select a workload behind it."""

    metadata = Metadata(
        name="destinationrule.SubsetSelectsPods",
        description="DestinationRule hosts exist and each subset selects at least one workload of the host",
        inputs=(DR, "Service", "ServiceEntry", "Workload", "Node"),
        codes=("MS1101", "MS1102"),
    )

    def analyze(self, ctx: Context) -> None:
        snap = ctx.snapshot
        nodes = {n.name: n.labels for n in snap.of_kind("Node")}
        for dr in ctx.for_each(DR):
            host = as_str(dr.spec.get("host"))
            if not host or host.startswith("*"):
                continue  # wildcard DRs (mesh-wide TLS defaults) name no single service
            target = lookup_host(snap, host, visible_namespaces(dr), dr.namespace)
            if target is None:
                ctx.report("MS1101", dr, "spec/host", host=host, namespace=dr.namespace or "(none)")
                continue
            backends = _backends(snap, target)
            if backends is None:
                continue
            workloads, _ = backends
            for i, subset in enumerate(as_list(dr.spec.get("subsets"))):
                subset = as_dict(subset)
                labels = selector_labels(subset.get("labels"))
                if not labels:
                    continue
                if not any(_subset_matches(labels, w, nodes.get(w.node_name or "", {})) for w in workloads):
                    ctx.report("MS1102", dr, f"spec/subsets[{i}]", related=[target],
                               subset=as_str(subset.get("name")) or str(i),
                               labels=",".join(f"{k}={v}" for k, v in sorted(labels.items())), host=host)


class Subsets:
    """Subset names must be unique; a subset without labels selects every endpoint."""

    metadata = Metadata(
        name="destinationrule.Subsets",
        description="Subset names are unique within a DestinationRule and subsets carry labels",
        inputs=(DR,),
        codes=("MS1103", "MS1105"),
    )

    def analyze(self, ctx: Context) -> None:
        for dr in ctx.for_each(DR):
            seen: set[str] = set()
            subsets = [as_dict(s) for s in as_list(dr.spec.get("subsets"))]
            for i, subset in enumerate(subsets):
                name = as_str(subset.get("name"))
                if name and name in seen:
                    ctx.report("MS1103", dr, f"spec/subsets[{i}]/name", subset=name)
                seen.add(name)
                if not selector_labels(subset.get("labels")) and len(subsets) > 1:
                    ctx.report("MS1105", dr, f"spec/subsets[{i}]", subset=name or str(i))


def _is_tls_default(host: str, snap: Snapshot) -> bool:
    """Mesh- or namespace-wide mTLS defaults (*.local, *.ns.svc.<suffix>) are meant to overlap."""
    suffix = snap.mesh_config.domain_suffix
    return host in ("*", "*.local", f"*.{suffix}") or (host.startswith("*.") and host.endswith(f".svc.{suffix}"))


class Duplicates:
    """Two DestinationRules for the same host (and subset) visible together: only one takes effect."""

    metadata = Metadata(
        name="destinationrule.Duplicates",
        description="At most one DestinationRule applies to a host and subset in any namespace",
        inputs=(DR, "MeshConfig"),
        codes=("MS1104",),
    )

    def analyze(self, ctx: Context) -> None:
        snap = ctx.snapshot
        by_host: dict[str, list[ConfigObject]] = defaultdict(list)
        for dr in ctx.for_each(DR):
            host = as_str(dr.spec.get("host"))
            if host and not _is_tls_default(host, snap) and not dr.spec.get("workloadSelector"):
                by_host[snap.fqdn(host, dr.namespace)].append(dr)
        hosts = list(by_host)
        wild = [h for h in hosts if h.startswith("*")]
        for host in hosts:
            group = list(by_host[host]) + [d for w in wild if w != host and host_covers(w, host) for d in by_host[w]]
            if len(group) < 2:
                continue
            for dr in by_host[host]:
                for other in group:
                    if other is dr or other.namespace != dr.namespace:
                        continue
                    mine = {as_str(as_dict(s).get("name")) for s in as_list(dr.spec.get("subsets"))}
                    theirs = {as_str(as_dict(s).get("name")) for s in as_list(other.spec.get("subsets"))}
                    shared = sorted(mine & theirs)
                    if mine and theirs and not shared:
                        continue  # different subsets of one host may live in different DestinationRules
                    ctx.report("MS1104", dr, "spec/host", related=[other], host=host,
                               subset=f" subset {shared[0]}" if shared else "",
                               other=f"{other.namespace}/{other.name}" if other.namespace else other.name)
                    break
