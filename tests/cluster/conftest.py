"""Fixtures of the real-cluster tests: the bundled mesh's config as a replayed Kubernetes API,
and the session Prometheus scraping the bundled mesh's sidecars."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.kubedata import list_bodies
from tests.util import wait_until

BOOKINFO = Path(__file__).resolve().parents[2] / "mesh" / "demo" / "bookinfo.yaml"


def bookinfo_docs() -> list[dict]:
    from mesh.config import load_paths

    return [o.raw for o in load_paths([BOOKINFO]).objects]


@pytest.fixture
def bookinfo_cluster(kube_api, tmp_path):
    """The replaying API server serving Bookinfo as a cluster would; returns (server, kubeconfig path)."""
    kube_api.lists.update(list_bodies(bookinfo_docs()))
    return kube_api, kube_api.kubeconfig(tmp_path)


@pytest.fixture(scope="module")
def scraping_mesh(bundled_mesh, prometheus):
    """The real Prometheus scraping every sidecar of the bundled mesh, with 5 s of request rates already stored."""
    targets = [t.url for t in bundled_mesh.scrape_targets()]
    with prometheus.scrape(targets, timeout=60):
        wait_until(lambda: prometheus.query('sum(rate(istio_requests_total{reporter="destination",'
                                            'destination_workload=~"reviews-.*"}[30s] offset 5s)) > 0'),
                   timeout=90, interval=0.5, what="request rates of the bundled mesh in Prometheus")
        yield prometheus, len(targets)


_WINDOW = "30s"
# what every test of the bundled mesh's rates reads: the last 30 s hold requests into bookinfo and out of the gateway
_FRESH = ('sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="bookinfo"}[30s])) > 0',
          'sum(rate(istio_requests_total{reporter="source",source_workload_namespace="istio-system"}[30s])) > 0')


@pytest.fixture
def mesh_prometheus(scraping_mesh):
    """`scraping_mesh`'s Prometheus once, at this test's start, every sidecar is up and the last 30 s hold requests
    into bookinfo and out of the gateway. A scrape that misses its 900 ms timeout (a busy box, a mesh just
    started) leaves a gap; a test's windows must not start inside one, so each test waits for the state it reads."""
    prometheus, n = scraping_mesh
    # `up` only says each target's *last* scrape worked; a rate over 30 s needs two samples of that target inside
    # the window. CI found a window where four sidecars' earlier scrapes had all timed out: their edges were missing.
    scraped = f'count(sum_over_time(up{{job="meshscope-test"}}[{_WINDOW}]) >= 4) >= {n}'
    wait_until(lambda: prometheus.targets_up() >= n and all(prometheus.query(q) for q in (*_FRESH, scraped)),
               timeout=120, interval=0.5,
               what=f"all {n} sidecars scraped 4 times in 30 s, and 30 s of bookinfo and gateway request rates")
    return prometheus
