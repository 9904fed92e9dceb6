"""ASM's limiter and client-side breaker as Envoy config, checked as data (the e2e runs them in real Envoy)."""
from __future__ import annotations

from mesh.controlplane.translate import LDS
from mesh.scenarios import get
from tests.mesh.controlplane.test_translate import build, node


def http_filters(listener: dict, chain: int = 0) -> list[dict]:
    hcm = listener["filter_chains"][chain]["filters"][0]["typed_config"]
    return hcm["http_filters"]


def hcm_of(listener: dict) -> dict:
    return listener["filter_chains"][0]["filters"][0]["typed_config"]


def test_local_rate_limiter_is_a_token_bucket_on_the_selected_inbound_listener_only():
    reg, proxies = build(get("asm-rate-limit").yaml)
    ratings = node(reg, proxies, "ratings-v1").resources[LDS]
    names = [f["name"] for f in http_filters(ratings["inbound_9080"])]
    assert names[-2:] == ["envoy.filters.http.local_ratelimit", "envoy.filters.http.router"]
    cfg = http_filters(ratings["inbound_9080"])[-2]["typed_config"]
    assert cfg["token_bucket"] == {"max_tokens": 2, "tokens_per_fill": 2, "fill_interval": "1.000s"}
    assert cfg["filter_enforced"]["default_value"]["numerator"] == 100
    for other in ("reviews-v1", "details-v1", "productpage-v1"):
        lds = node(reg, proxies, other).resources[LDS]
        assert not [f for lst in lds.values() for ch in lst["filter_chains"] for f in
                    ch["filters"][0]["typed_config"].get("http_filters", []) if "ratelimit" in f["name"]], other


def test_unusable_limiter_is_skipped_with_a_warning():
    bad = get("asm-rate-limit").yaml.replace("quota: 2", "quota: 0")
    reg, proxies = build(bad)
    ratings = node(reg, proxies, "ratings-v1")
    assert "envoy.filters.http.local_ratelimit" not in [f["name"] for f in http_filters(ratings.resources[LDS]["inbound_9080"])]
    assert any("ratings-limit" in w and "not applied" in w for w in ratings.warnings)


def test_client_breaker_is_admission_control_and_a_status_mapper_on_the_callers_outbound():
    reg, proxies = build(get("asm-circuit-breaker").yaml)
    for name in ("reviews-v1", "reviews-v2", "reviews-v3"):
        lds = node(reg, proxies, name).resources[LDS]
        out = next(v for k, v in lds.items() if k.startswith("outbound_"))
        filters = {f["name"]: f["typed_config"] for f in http_filters(out)}
        ac = filters["envoy.filters.http.admission_control"]
        assert ac["sr_threshold"]["default_value"] == {"value": 50.0} and ac["sampling_window"] == "10s"
        assert ac["success_criteria"]["http_criteria"]["http_success_status"] == [{"start": 100, "end": 500}]
        mappers = hcm_of(out)["local_reply_config"]["mappers"]
        # flagged local replies (UO, UH, NC ...) keep their code; the breaker's own 503 becomes 499
        assert mappers[0] == {"filter": {"response_flag_filter": {}}}
        assert mappers[1]["status_code"] == 499 and mappers[1]["body"] == {"inline_string": "circuit open"}
    pp = node(reg, proxies, "productpage-v1").resources[LDS]
    out = next(v for k, v in pp.items() if k.startswith("outbound_"))
    assert "local_reply_config" not in hcm_of(out)
    assert "envoy.filters.http.admission_control" not in [f["name"] for f in http_filters(out)]
