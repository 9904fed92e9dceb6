"""The per-snapshot config index answers exactly what scanning the snapshot answers (config_view).

The config is real: the bundled demo's Bookinfo (mesh/demo/bookinfo.yaml) with each fault
scenario's objects applied on top, plus a few objects that exercise wildcard hosts, exportless
short names in another namespace, subset policies, workload-selector PeerAuthentications,
ServiceEntries and a workload name used twice.
"""
import gc
import weakref
from pathlib import Path

import pandas as pd
import pytest

from mesh.config import Snapshot, host_covers, load_paths, load_text
from mesh.scenarios import SCENARIOS
from topology import GraphOptions, HealthConfig, build_graph
from topology import attrs as A
from topology import config_view, model
from topology.build import GraphBuilder
from topology.config_index import ConfigIndex, index_for, service_entry_hosts
from tests.topology.frames import both, bookinfo, frame, series

ROOT = Path(__file__).resolve().parents[2]

EXTRA = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: all-bookinfo, namespace: bookinfo}
spec: {hosts: ["*.bookinfo.svc.cluster.local"], http: [{retries: {attempts: 3}, route: [{destination: {host: reviews}}]}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge-everything, namespace: bookinfo}
spec: {hosts: ["*"], gateways: [bookinfo-gateway], http: [{fault: {abort: {httpStatus: 500}}, route: [{destination: {host: details}}]}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mirror-ratings, namespace: bookinfo}
spec: {hosts: [ratings.bookinfo.svc.cluster.local], gateways: [mesh, bookinfo-gateway],
       http: [{match: [{headers: {end-user: {exact: jason}}}], mirror: {host: ratings}, route: [{destination: {host: ratings}}]}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cluster-tls, namespace: istio-system}
spec: {host: "*.cluster.local", trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: other}
spec: {host: ratings, trafficPolicy: {connectionPool: {tcp: {maxConnections: 1}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-subsets, namespace: bookinfo}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}, trafficPolicy: {outlierDetection: {consecutive5xxErrors: 1}}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ratings-off, namespace: bookinfo}
spec: {selector: {matchLabels: {app: ratings}}, mtls: {mode: DISABLE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: a-details-unset, namespace: bookinfo}
spec: {selector: {matchLabels: {app: details}}, mtls: {mode: UNSET}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: legacy, namespace: legacy}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external, namespace: bookinfo}
spec: {hosts: ["*.external.com"], location: MESH_EXTERNAL, ports: [{number: 443, name: tls, protocol: TLS}], resolution: DNS}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: bookinfo}
spec: {hosts: [api.example.com, www.external.com], ports: [{number: 443, name: tls, protocol: TLS}], resolution: DNS}
---
# a bare pod with a Deployment's name: lookups by (namespace, name) take the first in config order, as a scan does
apiVersion: v1
kind: Pod
metadata: {name: reviews-v2, namespace: bookinfo, labels: {app: ratings, version: v2}}
spec: {containers: [{name: r, image: r}]}
"""


def overlay(base, extra):
    """`extra` replaces objects of the same kind/namespace/name (as applying a scenario does), else is added."""
    keys = {(o.kind, o.namespace, o.name) for o in extra}
    return [o for o in base if (o.kind, o.namespace, o.name) not in keys] + list(extra)


def _baseline():
    loaded = load_paths([ROOT / "mesh" / "demo" / "bookinfo.yaml"])
    assert not loaded.problems, loaded.problems
    extra = load_text(EXTRA, "extra.yaml")
    assert not extra.problems, extra.problems
    return loaded.objects, extra.objects


def snapshots():
    base, extra = _baseline()
    out = [("bookinfo", Snapshot(base))]
    out += [(s.name, Snapshot(overlay(base, s.objects))) for s in SCENARIOS if s.objects]
    every = [o for s in SCENARIOS for o in s.objects]  # duplicates on purpose: order decides between them
    out.append(("everything", Snapshot(base + every + extra)))
    return out


SNAPSHOTS = snapshots()
IDS = [name for name, _ in SNAPSHOTS]


def reference_badges(snap, d) -> list[str]:
    """Config badges the straightforward way: scan the snapshot for every node (config_view)."""
    version = d.get(A.VERSION) if model.is_ok(d.get(A.VERSION)) else None
    badges: set[str] = set()
    for host in config_view.node_hosts(snap, d):
        for vs in config_view.virtual_services(snap, host):
            badges |= config_view.vs_badges(vs)
        for dr in config_view.destination_rules(snap, host):
            badges |= config_view.dr_badges(dr, version)
    if d[A.NODE_TYPE] != model.NT_SERVICE and model.is_ok(d.get(A.NAMESPACE)):
        mode = config_view.mtls_mode(snap, d[A.NAMESPACE], config_view.node_labels(snap, d))
        if mode:
            badges.add(f"MTLS_{mode}")
    return sorted(badges)


def traffic():
    """Bookinfo with overflow resets (UO), an edge to a ServiceEntry host and one into another namespace."""
    return pd.concat([bookinfo(), frame(both("reviews-v2", "ratings-v1", 1.0, code="503", flags="UO"),
                                        series("productpage-v1", "details-v1", 1.0, reporter="source", code="503",
                                               flags="URX,UO"),
                                        series("productpage-v1", "legacy-v1", 2.0, dst_ns="legacy", csp="none"),
                                        series("productpage-v1", "unknown", 1.0, reporter="source",
                                               service="www.external.com", dst_ns="bookinfo"))],
                     ignore_index=True)


def probe_hosts(snap):
    hosts = {snap.fqdn(s.name, s.namespace) for s in snap.services()}
    for kind in ("VirtualService", "DestinationRule"):
        hosts |= {snap.fqdn(h, o.namespace) for o in snap.of_kind(kind) for h in config_view.object_hosts(o)}
    return sorted(hosts | {"ratings.other.svc.cluster.local", "x.external.com", "external.com", "a.b.external.com",
                           "www.external.com", "api.example.com", "*.bookinfo.svc.cluster.local", "cluster.local",
                           "*", "unknown"})


@pytest.mark.parametrize("name,snap", SNAPSHOTS, ids=IDS)
def test_host_lookups_equal_a_scan(name, snap):
    index = ConfigIndex(snap)
    for host in probe_hosts(snap):
        assert [id(o) for o in index.virtual_services.covering(host)] == \
            [id(o) for o in config_view.virtual_services(snap, host)], host
        assert [id(o) for o in index.destination_rules.covering(host)] == \
            [id(o) for o in config_view.destination_rules(snap, host)], host
        for version in (None, "v1", "v2"):
            expected: set[str] = set()
            for vs in config_view.virtual_services(snap, host):
                expected |= config_view.vs_badges(vs)
            for dr in config_view.destination_rules(snap, host):
                expected |= config_view.dr_badges(dr, version)
            assert index.host_badges(host, version) == expected, (host, version)
        # ServiceEntries: the first (config order) with a pattern covering the host, as the appender scanned
        first = next((se for se in snap.of_kind("ServiceEntry")
                      if any(host_covers(p, host) for p in service_entry_hosts(se))), None)
        assert index.service_entry([host]) is first, host


@pytest.mark.parametrize("name,snap", SNAPSHOTS, ids=IDS)
def test_workload_labels_and_mtls_intent_equal_a_scan(name, snap):
    index = ConfigIndex(snap)
    nodes = [{A.NAMESPACE: w.namespace, A.WORKLOAD: w.name, A.APP: "x", A.VERSION: "v9"} for w in snap.workloads()]
    nodes += [{A.NAMESPACE: ns, A.WORKLOAD: wl, A.APP: app, A.VERSION: ver}
              for ns in ("bookinfo", "legacy", "istio-system", "nowhere")
              for wl, app, ver in (("gone-v1", "ratings", "v1"), ("unknown", "details", "unknown"),
                                   ("", "reviews", "v2"), ("unknown", "unknown", "unknown"))]
    for d in nodes:
        labels = config_view.node_labels(snap, d)
        assert index.node_labels(d) == labels, d
        assert index.node_mtls_mode(d) == config_view.mtls_mode(snap, d[A.NAMESPACE], labels), d
    for w in snap.workloads():
        assert index.workload(w.namespace, w.name) is next(x for x in snap.workloads_in(w.namespace) if x.name == w.name)


@pytest.mark.parametrize("graph_type", model.GRAPH_TYPES)
@pytest.mark.parametrize("name,snap", SNAPSHOTS, ids=IDS)
def test_graph_badges_and_intent_equal_the_straightforward_method(name, snap, graph_type):
    g = build_graph(traffic(), graph_type, snapshot=snap, inject_service_nodes=True)
    checked = 0
    for _, d in g.nodes(data=True):
        if d[A.NODE_TYPE] in (model.NT_BOX, model.NT_UNKNOWN):
            continue
        assert d[A.BADGES] == reference_badges(snap, d), (d[A.KEY], d[A.BADGES])
        checked += 1
    assert checked >= 5
    for _, t, d in g.edges(data=True):
        node = g.nodes[t]
        assert d[A.MTLS_INTENT] == config_view.mtls_mode(snap, node[A.NAMESPACE], config_view.node_labels(snap, node))
        trip = "CB" in node[A.BADGES] and any({"UO", "UH"} & set(f.split(",")) for detail in d[A.RESPONSES].values()
                                              for f, r in detail["flags"].items() if r > 0)
        assert d.get(A.CB_TRIPPED, False) == trip


def test_the_extra_config_is_seen():
    """Guards the fixture: the objects above change badges and intent, so the comparisons mean something."""
    snap = dict(SNAPSHOTS)["everything"]
    g = build_graph(traffic(), "workload", snapshot=snap)
    by_wl = {d[A.WORKLOAD]: d for _, d in g.nodes(data=True) if d[A.NODE_TYPE] == model.NT_WORKLOAD}
    assert {"RETRY", "TLS_ISTIO_MUTUAL", "MTLS_DISABLE", "MIRROR", "ROUTING"} <= set(by_wl["ratings-v1"][A.BADGES])
    assert "FAULT" not in by_wl["productpage-v1"][A.BADGES]  # the fault is on a gateway-only VirtualService
    assert "CB" in by_wl["reviews-v2"][A.BADGES] and "CB" not in by_wl["reviews-v1"][A.BADGES]
    assert "MTLS_STRICT" in by_wl["details-v1"][A.BADGES]  # UNSET on the workload inherits the mesh's STRICT
    assert "MTLS_PERMISSIVE" in by_wl["legacy-v1"][A.BADGES]
    edges = {(g.nodes[s][A.WORKLOAD], g.nodes[t][A.WORKLOAD]): d for s, t, d in g.edges(data=True)}
    assert A.CB_TRIPPED not in edges[("reviews-v2", "ratings-v1")]  # UO seen, but ratings has no circuit breaker
    assert edges[("productpage-v1", "details-v1")][A.CB_TRIPPED] is True  # the circuit-breaker scenario's DR
    assert edges[("productpage-v1", "reviews-v2")][A.MTLS_INTENT] == "STRICT"
    svc = build_graph(traffic(), "service", snapshot=snap)
    entries = {d[A.SERVICE]: d[A.IS_SERVICE_ENTRY]["name"] for _, d in svc.nodes(data=True) if d.get(A.IS_SERVICE_ENTRY)}
    assert entries == {"www.external.com": "bookinfo/external"}  # the first entry in config order covering it


def test_one_index_per_snapshot_object_and_refresh_reuses_it():
    base, extra = _baseline()
    snap = Snapshot(base + extra)
    assert index_for(snap) is index_for(snap) and index_for(Snapshot(base)) is not index_for(snap)
    builder = GraphBuilder(GraphOptions(), snapshot=snap)
    g = builder.build(bookinfo())
    index = builder.config_index()
    ratings = next(d for _, d in g.nodes(data=True) if d[A.WORKLOAD] == "ratings-v1")
    assert "RETRY" in ratings[A.BADGES]
    builder.refresh(g, bookinfo(ratings_5xx=1.0))
    assert builder.config_index() is index
    # the config changes: a new Snapshot without the retrying VirtualService; the next refresh uses it
    builder.snapshot = Snapshot([o for o in base + extra if o.name != "all-bookinfo"])
    builder.refresh(g, bookinfo(ratings_5xx=1.0))
    assert builder.config_index() is not index
    ratings = next(d for _, d in g.nodes(data=True) if d[A.WORKLOAD] == "ratings-v1")
    assert "RETRY" not in ratings[A.BADGES] and "MTLS_DISABLE" in ratings[A.BADGES]


def test_refresh_applies_new_health_thresholds():
    builder = GraphBuilder(GraphOptions())
    g = builder.build(bookinfo(ratings_5xx=0.2))  # 0.2 of 3 rps: 6.7 % 5xx, degraded by Kiali's defaults
    edge = next(d for s, t, d in g.edges(data=True) if g.nodes[t][A.WORKLOAD] == "ratings-v1"
                and g.nodes[s][A.WORKLOAD] == "reviews-v2")
    assert edge[A.HEALTH] == "Degraded"
    builder.refresh(g, bookinfo(ratings_5xx=0.2))
    assert edge[A.HEALTH] == "Degraded"
    builder.health = HealthConfig.from_dict({"rate": [{"namespace": "bookinfo", "tolerance": [
        {"code": "5XX", "degraded": 1, "failure": 5}]}]})
    builder.refresh(g, bookinfo(ratings_5xx=0.2))
    assert edge[A.HEALTH] == "Failure"


OWNED = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1, namespace: bookinfo}
spec: {template: {metadata: {labels: {app: reviews, version: v1}}, spec: {containers: [{name: r, image: r}]}}}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: reviews-v1-5d8f9c, namespace: bookinfo, ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: reviews-v1, controller: true}]}
spec: {template: {metadata: {labels: {app: reviews, version: v1}}, spec: {containers: [{name: r, image: r}]}}}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-v1-5d8f9c-abcde, namespace: bookinfo, labels: {app: reviews, version: v1},
           ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: reviews-v1-5d8f9c, controller: true}]}
spec: {containers: [{name: r, image: r}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: orphan-rs, namespace: bookinfo, ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: deleted, controller: true}]}
spec: {template: {metadata: {labels: {app: orphan, version: v1}}, spec: {containers: [{name: o, image: o}]}}}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: plain-rs, namespace: bookinfo}
spec: {template: {metadata: {labels: {app: plain, version: v1}}, spec: {containers: [{name: p, image: p}]}}}
"""


def test_replica_sets_of_a_deployment_are_not_idle_nodes():
    loaded = load_text(OWNED, "owned.yaml")
    assert not loaded.problems
    g = build_graph(frame(both("productpage-v1", "reviews-v1", 5.0)), snapshot=Snapshot(loaded.objects))
    idle = sorted(d[A.WORKLOAD] for _, d in g.nodes(data=True) if d.get(A.IS_IDLE))
    # the Deployment has traffic; its ReplicaSet and Pod are the same workload; an RS whose owner
    # is gone, or that has none, is a workload of its own
    assert idle == ["orphan-rs", "plain-rs"]


def test_an_index_does_not_keep_its_snapshot_alive():
    base, extra = _baseline()
    snap = Snapshot(base + extra)
    build_graph(bookinfo(), snapshot=snap)  # indexes it
    assert index_for(snap).snapshot is snap
    ref = weakref.ref(snap)
    del snap
    gc.collect()
    assert ref() is None
