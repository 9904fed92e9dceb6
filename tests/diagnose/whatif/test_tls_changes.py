"""What-if for the client side of mTLS: a DestinationRule's `tls.mode` judged against the server's mode.

The transport of an edge after a change is decided by both ends: the caller's DestinationRule (DISABLE,
ISTIO_MUTUAL, SIMPLE/MUTUAL, or auto mTLS when it sets none) and the destination workload's
PeerAuthentication mode. A caller seen reporting its own requests has a sidecar that obeys its
DestinationRule; one that never reports keeps sending what it sends.
"""
from __future__ import annotations

import pytest

from diagnose.whatif import predict
from diagnose.whatif.replay import overlay
from mesh.config import load_text
from tests.diagnose.whatif.test_replay import _live, _row

STRICT_NS = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: bookinfo}
spec: {mtls: {mode: STRICT}}
"""


def _objs(text: str):
    got = load_text(text, "x.yaml")
    assert not got.problems, got.problems
    return got.objects


def _dr(host: str, tls: str | None, subset_tls: str | None = None) -> str:
    top = f"\n  trafficPolicy: {{tls: {{mode: {tls}}}}}" if tls else ""
    sub = f", trafficPolicy: {{tls: {{mode: {subset_tls}}}}}" if subset_tls else ""
    return f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {host}, namespace: bookinfo}}
spec:
  host: {host}{top}
  subsets:
  - {{name: v1, labels: {{version: v1}}{sub}}}
"""


def _window(plain_caller: bool = False):
    import pandas as pd
    rows = [_row("bookinfo", "productpage-v1", "details-v1", "details", 4.0, sa="bookinfo-productpage"),
            _row("bookinfo", "productpage-v1", "details-v1", "details", 4.0, sa="bookinfo-productpage",
                 reporter="source"),
            _row("bookinfo", "reviews-v2", "ratings-v1", "ratings", 2.0, sa="bookinfo-reviews")]
    if plain_caller:  # productpage sends details plaintext today (its DestinationRule says DISABLE)
        rows[:2] = [_row("bookinfo", "productpage-v1", "details-v1", "details", 4.0, mtls=False),
                    _row("bookinfo", "productpage-v1", "details-v1", "details", 4.0, mtls=False, reporter="source")]
        rows.append(_row("legacy", "curl", "details-v1", "details", 1.5, mtls=False))  # no sidecar: never reports
    return pd.DataFrame(rows)


def _broken(rep):
    return {(i.source, i.destination): (i.broken_rps, i.certain, i.reason) for i in rep.impacts if i.broken_rps}


def test_tls_disable_toward_a_strict_workload_breaks_its_callers_and_names_the_rule() -> None:
    live = overlay(_live(), _objs(STRICT_NS))
    rep = predict(live, _objs(_dr("details", "DISABLE")), _window(), 3600, findings=False)
    got = _broken(rep)
    assert set(got) == {("bookinfo/productpage-v1", "bookinfo/details-v1")}, got
    rps, certain, reason = got["bookinfo/productpage-v1", "bookinfo/details-v1"]
    assert rps == pytest.approx(4.0) and certain
    assert "plaintext" in reason and "DestinationRule bookinfo/details tls.mode DISABLE" in reason
    imp = rep.impacts[0]
    assert imp.rule["kind"] == "DestinationRule" and imp.rule["name"] == "details"
    # the same rule with the workload PERMISSIVE (bookinfo's default) breaks nothing
    assert _broken(predict(_live(), _objs(_dr("details", "DISABLE")), _window(), 3600, findings=False)) == {}


def test_a_subset_level_tls_mode_counts_only_where_a_route_sends_to_that_subset() -> None:
    live = overlay(_live(), _objs(STRICT_NS))
    prop = _objs(_dr("details", None, subset_tls="DISABLE"))
    assert _broken(predict(live, prop, _window(), 3600, findings=False)) == {}  # no route names subset v1
    routed = prop + _objs("""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details, namespace: bookinfo}
spec:
  hosts: [details]
  http: [{route: [{destination: {host: details, subset: v1}}]}]
""")
    got = _broken(predict(live, routed, _window(), 3600, findings=False))
    assert set(got) == {("bookinfo/productpage-v1", "bookinfo/details-v1")}, got


def test_strict_with_the_plaintext_caller_switched_to_istio_mutual_breaks_only_the_caller_without_a_sidecar() -> None:
    live = overlay(_live(), _objs(_dr("details", "DISABLE")))
    prop = _objs(STRICT_NS) + _objs(_dr("details", "ISTIO_MUTUAL"))
    got = _broken(predict(live, prop, _window(plain_caller=True), 3600, findings=False))
    assert set(got) == {("legacy/curl", "bookinfo/details-v1")}, got
    assert "no sidecar" in got["legacy/curl", "bookinfo/details-v1"][2]
    # STRICT alone: the DISABLE rule stays, so productpage's plaintext is refused too
    got = _broken(predict(live, _objs(STRICT_NS), _window(plain_caller=True), 3600, findings=False))
    assert set(got) == {("legacy/curl", "bookinfo/details-v1"), ("bookinfo/productpage-v1", "bookinfo/details-v1")}


def test_istio_mutual_insisted_on_toward_a_workload_turned_disable_fails() -> None:
    live = overlay(_live(), _objs(_dr("details", "ISTIO_MUTUAL")))
    disable = STRICT_NS.replace("STRICT", "DISABLE")
    got = _broken(predict(live, _objs(disable), _window(), 3600, findings=False))
    assert set(got) == {("bookinfo/productpage-v1", "bookinfo/details-v1")}, got
    assert "DISABLE" in got["bookinfo/productpage-v1", "bookinfo/details-v1"][2]
    # with auto mTLS (no tls mode) the caller follows the server to plaintext: nothing breaks
    assert _broken(predict(_live(), _objs(disable), _window(), 3600, findings=False)) == {}


def test_tls_origination_to_a_sidecar_is_at_risk_not_certain() -> None:
    rep = predict(_live(), _objs(_dr("details", "SIMPLE")), _window(), 3600, findings=False)
    got = _broken(rep)
    assert set(got) == {("bookinfo/productpage-v1", "bookinfo/details-v1")}, got
    assert got["bookinfo/productpage-v1", "bookinfo/details-v1"][1] is False
    assert rep.broken_rps == 0 and rep.at_risk_rps == pytest.approx(4.0)
