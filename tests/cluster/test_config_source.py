"""serve's separate config source (an ASM instance's API) next to the data-plane cluster, and the one-line
warning when the data plane has sidecars but serves no Istio kinds."""
from __future__ import annotations

import pytest

from meshscope.cluster import ClusterBackend, ClusterOptions
from meshscope.config_source import HINT
from tests.cluster.conftest import bookinfo_docs
from tests.cluster.kubedata import list_bodies
from tests.fixtures.kubeapi import KubeAPIServer
from tests.util import free_port

ISTIO_GROUPS = ("networking.istio.io", "security.istio.io")
LIMITER = {"apiVersion": "istio.alibabacloud.com/v1", "kind": "ASMLocalRateLimiter",
           "metadata": {"name": "reviews-limit", "namespace": "bookinfo"},
           "spec": {"workloadSelector": {"labels": {"app": "reviews"}},
                    "configs": [{"limit": {"fill_interval": {"seconds": 1}, "quota": 5}}]}}
ASM_SLO = {"apiVersion": "istio.alibabacloud.com/v1beta1", "kind": "ServiceLevelObjective",
           "metadata": {"name": "asm-slo-bookinfo-reviews", "namespace": "bookinfo"},
           "spec": {"service": "reviews", "period": "7d", "labels": {"owner": "reviews-team"},
                    "slos": [{"name": "avail", "objective": "99.5", "sli": {"plugin": {"id": "availability"}},
                              "alerting": {"name": "reviews-burn", "pageAlert": {"labels": {"severity": "10"}}}}]}}


def _split(docs: list[dict]) -> tuple[dict, dict]:
    """(data-plane lists without Istio's kinds, as an old ASM data-plane cluster serves; the ASM instance's lists)."""
    data = {p: b for p, b in list_bodies(docs).items() if not any(f"/apis/{g}/" in p for g in ISTIO_GROUPS)}
    config_docs = [d for d in docs if d.get("apiVersion", "").split("/")[0] in ISTIO_GROUPS] + [LIMITER, ASM_SLO]
    config = {p: b for p, b in list_bodies(config_docs).items()
              if any(f"/apis/{g}/" in p for g in (*ISTIO_GROUPS, "istio.alibabacloud.com"))}
    return data, config


@pytest.fixture
def two_apis(tmp_path):
    data, config = KubeAPIServer().start(), KubeAPIServer(token="asm-instance-token").start()
    data.lists.update(_split(bookinfo_docs())[0])
    config.lists.update(_split(bookinfo_docs())[1])
    (tmp_path / "data").mkdir()
    (tmp_path / "asm").mkdir()
    yield data, data.kubeconfig(tmp_path / "data", "ack-dataplane"), config, config.kubeconfig(tmp_path / "asm", "asm")
    data.stop()
    config.stop()


def _backend(**kw) -> ClusterBackend:
    return ClusterBackend(ClusterOptions(prometheus_url=f"http://127.0.0.1:{free_port()}", prometheus_timeout=1,
                                         debounce_s=0.2, **kw))


def test_data_plane_without_istio_kinds_warns_in_one_line(two_apis):
    data, data_cfg, _, _ = two_apis
    be = _backend(kubeconfig=str(data_cfg))
    progress: list[str] = []
    be.start(progress=progress.append)
    try:
        snap = be.snapshot()
        assert snap.workloads() and not snap.of_kind("VirtualService")
        warnings = [line for line in progress if HINT in line]
        assert len(warnings) == 1 and warnings[0].startswith("WARNING")
        assert be.notices() == [HINT]
        # ASM's kinds are absent from a plain cluster: not listed as "not served"
        assert not any("ASMLocalRateLimiter" in line for line in progress)
    finally:
        be.stop()


def test_config_kubeconfig_reads_istio_and_asm_kinds_from_the_asm_instance(two_apis):
    data, data_cfg, config, config_cfg = two_apis
    be = _backend(kubeconfig=str(data_cfg), config_kubeconfig=str(config_cfg))
    progress: list[str] = []
    be.start(progress=progress.append)
    try:
        snap = be.snapshot()
        assert {o.name for o in snap.of_kind("DestinationRule")} == {"productpage", "reviews", "ratings", "details"}
        assert [o.name for o in snap.of_kind("ASMLocalRateLimiter")] == ["reviews-limit"]
        assert snap.workloads() and {s.name for s in snap.services()} >= {"reviews", "ratings"}
        assert be.notices() == [] and not any(HINT in line for line in progress)
        # each API was asked only for its own kinds
        assert not any("/apis/networking.istio.io/" in r for r in data.requests)
        assert not any(r.startswith("/api/v1/pods") for r in config.requests)
        assert be.status()["kubernetes"]["state"] == "ok"
        # ASM SLOs come from the cluster too, through the same import as files (the live loop reads the snapshot)
        from diagnose.slo import slos_from_objects
        loaded = slos_from_objects(o for o in snap.objects if o.kind == "ServiceLevelObjective")
        assert not loaded.problems
        assert [(x.name, x.service, x.objective, x.page_labels) for x in loaded.slos] == [
            ("reviews-avail", "reviews.bookinfo.svc.cluster.local", 99.5, {"severity": "10"})]
    finally:
        be.stop()


def test_analyze_kubeconfig_prints_the_same_warning(two_apis, capsys):
    from meshscope.commands.analyze import _cluster_objects

    _, data_cfg, _, _ = two_apis
    objects = _cluster_objects(str(data_cfg), None, [], "istio-system")
    assert objects
    err = capsys.readouterr().err
    assert err.count(HINT) == 1
