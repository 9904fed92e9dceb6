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
def mesh_prometheus(bundled_mesh, prometheus):
    """The real Prometheus scraping every sidecar of the bundled mesh, with 5 s of request rates already stored."""
    targets = [t.url for t in bundled_mesh.scrape_targets()]
    with prometheus.scrape(targets, timeout=60):
        wait_until(lambda: prometheus.query('sum(rate(istio_requests_total{reporter="destination",'
                                            'destination_workload=~"reviews-.*"}[30s] offset 5s)) > 0'),
                   timeout=90, interval=0.5, what="request rates of the bundled mesh in Prometheus")
        yield prometheus
