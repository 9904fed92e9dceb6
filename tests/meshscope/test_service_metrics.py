"""The Service page's numbers (`LiveSource.service_metrics`) are the graph's numbers.

Recorded tables (a seeded synthetic mesh whose errors are 404s, 503s and no responses) check
every service: each version's inbound point is the sum over the workload graph's edges into
that version's nodes, outbound the sum over the edges out of them, errors counted the way the
graph's edge error % counts them (4xx + 5xx + no response). The clock is pinned so the graph
and the page describe one instant.
"""
from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from collector import schema as s
from meshscope import live_source
from tests.meshscope.pinned import PinnedSource, settled_with_errors
from tests.meshscope.test_element_metrics import RecordedBackend, few_points, recorded_frame  # noqa: F401 (a fixture)

WINDOW = 60.0
AT = 1_800_000_000.0
FAILED = ("4xx", "5xx", "-")  # the graph edge's response classes that count as errors


def source(frame: pd.DataFrame) -> PinnedSource:
    return PinnedSource(SimpleNamespace(backend=RecordedBackend(frame)), at=AT)


def service_nodes(frame: pd.DataFrame, nodes: list[dict], name: str, namespace: str) -> dict[str, set[str]]:
    """version -> ids of the workload graph's nodes that served the service, read from the recorded rows."""
    rows = frame[(frame[s.REPORTER] == "destination") & (frame[s.DESTINATION_SERVICE_NAME] == name)
                 & (frame[s.DESTINATION_SERVICE_NAMESPACE] == namespace)]
    served = set(zip(rows[s.DESTINATION_WORKLOAD_NAMESPACE].astype(str), rows[s.DESTINATION_WORKLOAD].astype(str)))
    out: dict[str, set[str]] = {}
    for n in nodes:
        if n.get("type") == "workload" and (n["namespace"], n["name"]) in served:
            out.setdefault(n["version"], set()).add(n["id"])
    return out


def edge_sum(edges: list[dict]) -> tuple[float, float]:
    """(rps, error %) of a set of graph edges, from each edge's own rate per response class."""
    rps = sum(e["rps"] for e in edges)
    failed = sum(r for e in edges for cls, r in e["codes"].items() if cls in FAILED)
    return rps, 100 * failed / rps if rps else 0.0


def graph_of(src: PinnedSource) -> tuple[list[dict], list[dict]]:
    elements = [e["data"] for e in src.graph("workload", None, WINDOW).elements]
    return [d for d in elements if "source" not in d], [d for d in elements if "source" in d]


def assert_point(series: dict, rps: float, error_pct: float) -> None:
    assert series["t"][-1] == pytest.approx(AT, abs=1e-3)
    assert series["rps"][-1] == pytest.approx(rps, abs=2e-3)
    assert series["error_pct"][-1] == pytest.approx(error_pct, abs=0.051)  # the page shows one decimal


@pytest.mark.usefixtures("few_points")
def test_inbound_and_outbound_per_version_are_sums_over_the_graph_edges():
    frame = recorded_frame()
    src = source(frame)
    nodes, edges = graph_of(src)
    services = src.services()
    assert len(services) == 6
    checked = 0
    for svc in services:
        page = src.service_metrics(svc["service"], WINDOW)
        by_version = service_nodes(frame, nodes, svc["name"], svc["namespace"])
        assert page is not None and set(page["inbound"]) == set(by_version)
        total, failed = 0.0, 0.0
        for version, ids in by_version.items():
            rps, err = edge_sum([e for e in edges if e["target"] in ids])
            assert_point(page["inbound"][version], rps, err)
            total, failed = total + rps, failed + rps * err / 100
            out = [e for e in edges if e["source"] in ids]
            if out:
                assert_point(page["outbound"][version], *edge_sum(out))
            checked += 1
        # all versions together: the service graph's node, as the Services list shows it
        assert total == pytest.approx(svc["rps"], abs=1e-2)
        assert 100 * failed / total == pytest.approx(svc["error_pct"], abs=0.051)
    assert checked > 15


@pytest.mark.usefixtures("few_points")
def test_404s_count_as_errors_like_on_the_graph():
    frame = recorded_frame()
    name, namespace = "svc2", "ns0"
    into = ((frame[s.DESTINATION_SERVICE_NAME] == name) & (frame[s.DESTINATION_SERVICE_NAMESPACE] == namespace)).to_numpy()
    failed = (frame[s.RESPONSE_CODE] != "200").to_numpy() & (frame[s.METRIC] == s.ISTIO_REQUESTS_TOTAL).to_numpy()
    frame.loc[into & failed, s.RESPONSE_CODE] = "404"  # a 4xx-only service
    assert (into & failed).any()
    src = source(frame)
    nodes, edges = graph_of(src)
    page = src.service_metrics(f"{name}.{namespace}.svc.cluster.local", WINDOW)
    rows = frame[into & (frame[s.REPORTER] == "destination").to_numpy() & (frame[s.METRIC] == s.ISTIO_REQUESTS_TOTAL).to_numpy()]
    errors = 0
    for version, ids in service_nodes(frame, nodes, name, namespace).items():
        mine = rows[rows[s.DESTINATION_VERSION] == version]
        want = 100 * mine.loc[mine[s.RESPONSE_CODE] == "404", s.RATE].sum() / mine[s.RATE].sum()
        got = page["inbound"][version]["error_pct"][-1]
        assert got == pytest.approx(want, abs=0.051)
        assert got == pytest.approx(edge_sum([e for e in edges if e["target"] in ids])[1], abs=0.051)
        errors += got > 0
    assert errors >= 1


@pytest.mark.usefixtures("few_points")
def test_no_response_and_5xx_are_errors_too_and_each_version_counts_its_own_requests():
    frame = recorded_frame()
    src = source(frame)
    name, namespace = "svc5", "ns1"
    rows = frame[(frame[s.REPORTER] == "destination") & (frame[s.METRIC] == s.ISTIO_REQUESTS_TOTAL)
                 & (frame[s.DESTINATION_SERVICE_NAME] == name) & (frame[s.DESTINATION_SERVICE_NAMESPACE] == namespace)]
    assert {"0", "503", "404"} <= set(rows[s.RESPONSE_CODE])
    page = src.service_metrics(f"{name}.{namespace}", WINDOW)  # the short form names the same service
    assert set(page["inbound"]) == set(rows[s.DESTINATION_VERSION])
    for version, mine in rows.groupby(s.DESTINATION_VERSION, observed=True):
        want = 100 * mine.loc[mine[s.RESPONSE_CODE] != "200", s.RATE].sum() / mine[s.RATE].sum()
        assert page["inbound"][version]["rps"][-1] == pytest.approx(mine[s.RATE].sum(), abs=2e-3)
        assert page["inbound"][version]["error_pct"][-1] == pytest.approx(want, abs=0.051)


@pytest.mark.usefixtures("few_points")
def test_a_page_costs_one_series_of_frames_and_no_graph_build():
    backend = RecordedBackend(recorded_frame())
    src = PinnedSource(SimpleNamespace(backend=backend), at=AT)
    page = src.service_metrics("svc1.ns1.svc.cluster.local", WINDOW)
    assert page and all(len(v["t"]) == live_source.SERIES_POINTS for d in page.values() for v in d.values())
    assert backend.calls == live_source.SERIES_POINTS and src.graph_builds == 0
    assert src.service_metrics("nosuch.ns1.svc.cluster.local", WINDOW) is None


def test_no_traffic_means_no_page():
    assert source(recorded_frame().iloc[0:0]).service_metrics("svc1.ns1", WINDOW) is None


@pytest.mark.e2e
@pytest.mark.usefixtures("few_points")
def test_service_page_numbers_are_the_graph_numbers_on_the_bundled_mesh(stack):
    # one closed instant of the mesh's real telemetry, copied so both views read the same scrapes
    # (the live store evicts and a late scrape round closes a past window: see pinned.py), with errors
    # of both kinds in the window: 503s the server answered and aborts that never reached a workload
    settled = settled_with_errors(stack)
    src = settled.source()
    live = [d for d in src.services() if d["rps"] > 0]
    assert live and any(d["error_pct"] > 0 for d in live)
    nodes, edges = graph_of(src)
    compared = 0
    for svc in live:
        page = src.service_metrics(svc["service"], WINDOW)
        assert page is not None and page["inbound"], svc
        total = sum(v["rps"][-1] for v in page["inbound"].values())
        failed = sum(v["rps"][-1] * v["error_pct"][-1] / 100 for v in page["inbound"].values())
        # both sides are rounded as the UI shows them: rps to 3 decimals (each version and the list), error % to
        # one decimal (each version's, averaged by rate, and the list's)
        assert total == pytest.approx(svc["rps"], abs=5e-4 * (len(page["inbound"]) + 1) + 1e-9), svc
        assert 100 * failed / total == pytest.approx(svc["error_pct"], abs=0.1 + 1e-9), svc
        for version, series in page["inbound"].items():
            ids = {n["id"] for n in nodes if n.get("type") == "workload" and n.get("app") == svc["name"]
                   and n["namespace"] == svc["namespace"] and (n.get("version") or "unknown") == version}
            into = [e for e in edges if e["target"] in ids]
            if into:
                rps, err = edge_sum(into)
                assert series["rps"][-1] == pytest.approx(rps, abs=2e-3), (svc, version)
                assert series["error_pct"][-1] == pytest.approx(err, abs=0.051), (svc, version)
                compared += 1
    assert compared >= 4  # every Bookinfo service's versions were held against the graph's edges
