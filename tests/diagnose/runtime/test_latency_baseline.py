"""Usual latency: robust to a busy host (everything slower together) and learned from healthy windows only."""
from diagnose.rules.runtime import RuntimeContext, analyze_runtime
from tests.diagnose.runtime.tables import T0, fqdn, requests, table
from tests.diagnose.runtime.test_live import Clock, traffic  # noqa: F401  (the live fixture's helpers)
from tests.diagnose.runtime.test_live import live  # noqa: F401

END = T0 + 30
SERVICES = ("reviews", "details", "ratings", "productpage")


def window(slow: dict[str, float]):
    parts = []
    for name in SERVICES:
        parts.append(requests("caller-v1", fqdn(name), "ok", 60, start=T0, end=END, duration_ms=slow.get(name, 40.0)))
    return RuntimeContext(start=T0, end=END, requests=table(*parts),
                          latency_baseline={fqdn(n): 10.0 for n in SERVICES})


def slow_services(ctx) -> set[str]:
    return {f.evidence["edge_key"] for f in analyze_runtime(ctx) if f.code == "MS3014"}


def test_a_busy_host_slowing_every_service_raises_nothing():
    # every service at 4x-13x its usual p95 at once: the host, not a service (and under the minimum effect)
    assert slow_services(window({n: 130.0 for n in SERVICES})) == set()
    assert slow_services(window({"reviews": 60.0, "details": 90.0, "ratings": 130.0, "productpage": 70.0})) == set()


def test_one_service_regressing_on_a_quiet_host_is_found():
    assert slow_services(window({"details": 400.0, "reviews": 12.0, "ratings": 11.0, "productpage": 12.0})) == \
        {fqdn("details")}


def test_a_slower_tail_with_a_normal_median_is_host_noise():
    parts = [requests("caller-v1", fqdn(n), "ok", 60, start=T0, end=END, duration_ms=8.0) for n in SERVICES]
    # one service: most requests as fast as usual, a tenth stalled by the scheduler for 600 ms
    parts.append(requests("caller-v1", fqdn("details"), "ok", 8, start=T0 + 20, end=END, duration_ms=600.0))
    ctx = RuntimeContext(start=T0, end=END, requests=table(*parts), latency_baseline={fqdn(n): 10.0 for n in SERVICES})
    assert slow_services(ctx) == set()


def test_a_loaded_hosts_tail_past_the_absolute_bound_is_not_a_regression():
    """Seen in the eval's healthy check at load 50: the gateway's usual p95 was already 529 ms, a tail of 1009 ms
    crossed the 1 s bound with the median where it always was. A regression of the same p95 moves the median."""
    base = {fqdn(n): 500.0 for n in SERVICES}
    usual = [requests("caller-v1", fqdn(n), "ok", 60, start=T0, end=END, duration_ms=300.0) for n in SERVICES]
    tail = requests("caller-v1", fqdn("productpage"), "ok", 8, start=END - 8, end=END, duration_ms=1100.0)
    ctx = RuntimeContext(start=T0, end=END, requests=table(*usual, tail), latency_baseline=base)
    assert slow_services(ctx) == set()
    moved = requests("caller-v1", fqdn("productpage"), "ok", 40, start=END - 8, end=END, duration_ms=1100.0)
    ctx = RuntimeContext(start=T0, end=END, requests=table(*usual, moved), latency_baseline=base)
    assert slow_services(ctx) == {fqdn("productpage")}


def test_a_slower_build_on_a_loaded_host_crosses_the_bound_with_its_median_shifted():
    """Load spreads the tail far above the median (usual p95 900 ms, median 300 ms); a build 250 ms slower shifts
    every request: the median moves by 250 ms, still below the usual p95, and the p95 crosses 1 s."""
    base = {fqdn(n): 900.0 for n in SERVICES}
    usual = [requests("caller-v1", fqdn(n), "ok", 60, start=T0, end=END - 10, duration_ms=300.0) for n in SERVICES]
    usual += [requests("caller-v1", fqdn(n), "ok", 20, start=T0, end=END, duration_ms=300.0) for n in SERVICES
              if n != "details"]
    slower = table(requests("caller-v1", fqdn("details"), "ok", 18, start=END - 10, end=END, duration_ms=550.0),
                   requests("caller-v1", fqdn("details"), "ok", 2, start=END - 10, end=END, duration_ms=1150.0))
    ctx = RuntimeContext(start=T0, end=END, requests=table(*usual, slower), latency_baseline=base)
    assert slow_services(ctx) == {fqdn("details")}


def test_a_small_slowdown_is_below_the_minimum_effect():
    assert slow_services(window({"details": 60.0, "reviews": 10.0, "ratings": 10.0, "productpage": 10.0})) == set()


def test_an_incidents_fast_failures_do_not_become_the_usual_latency(live):  # noqa: F811
    diag, store, clock = live
    store.add_requests(requests("productpage-v1", fqdn("reviews"), "ok", 100, start=T0, end=T0 + 10, duration_ms=80))
    clock.t = T0 + 10
    diag.evaluate()
    usual = diag.latency_baseline[fqdn("reviews")]
    assert 70 <= usual <= 90
    # an incident: nearly every call fails fast (NC answers in ~0 ms); the few that pass stay as slow as ever
    for k in range(1, 6):
        store.add_requests(table(
            requests("productpage-v1", fqdn("reviews"), "ok", 2, start=T0 + 10 * k, end=T0 + 10 * (k + 1), duration_ms=80),
            requests("productpage-v1", fqdn("reviews"), "no_cluster", 58, start=T0 + 10 * k, end=T0 + 10 * (k + 1),
                     duration_ms=0.1)))
        clock.t = T0 + 10 * (k + 1)
        diag.evaluate()
    assert diag.latency_baseline[fqdn("reviews")] >= usual * 0.9
