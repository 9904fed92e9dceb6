"""Malformed telemetry and SLO specs: skipped or reported, never a traceback; the good rest still counts."""
import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import schema as s
from diagnose.rules.runtime import RuntimeContext, analyze_runtime
from diagnose.slo import SLO, SloEngine
from diagnose.slo.spec import SpecError, slo_from_spec
from tests.diagnose.runtime.tables import T0, fqdn, requests, table


def test_garbage_cells_do_not_break_the_rules_and_good_rows_still_count():
    good = requests("productpage-v1", fqdn("reviews"), "no_cluster", 20)
    bad = requests("productpage-v1", fqdn("reviews"), "no_cluster", 5).astype(object)
    bad[s.RESPONSE_CODE] = ["abc", None, np.nan, "503", -1]
    bad[s.RESPONSE_FLAGS] = [None, "", np.nan, "NC", "NC,,"]
    bad[s.DESTINATION_SERVICE] = [None, "", "unknown", fqdn("reviews"), 7]
    bad[s.DURATION_MS] = ["x", None, -3, "12", np.inf]
    bad[s.START_TIME] = [pd.NaT, "not a time", None, good[s.START_TIME].iloc[0], good[s.START_TIME].iloc[1]]
    df = pd.concat([good.astype(object), bad], ignore_index=True)
    found = analyze_runtime(RuntimeContext(start=T0, end=T0 + 30, requests=df))
    nc = next(f for f in found if f.code == "MS3006")
    assert nc.evidence["response_flags"]["NC"] >= 20
    eng = SloEngine([SLO(name="r", namespace="bookinfo", service=fqdn("reviews"), objective=99.0)])
    eng.ingest_requests(RuntimeContext(start=T0, end=T0 + 30, requests=df).edge_requests, T0 + 30)
    st_ = eng.status(T0 + 30)[0]
    assert 20 <= st_.requests <= 25  # rows without a time are skipped, the rest counted


def test_missing_columns_are_tolerated():
    df = table(requests("a", fqdn("b"), "timeout", 10))[[s.START_TIME, s.RESPONSE_FLAGS, s.DESTINATION_SERVICE]]
    found = analyze_runtime(RuntimeContext(start=T0, end=T0 + 30, requests=df))
    assert [f.code for f in found] == ["MS3008"]


values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                      max_leaves=8)
specs = st.dictionaries(st.sampled_from(["service", "sli", "objective", "period", "reporter", "alerting",
                                         "description"]), values, max_size=7)


@settings(max_examples=300, deadline=None)
@given(spec=specs, namespace=st.none() | st.text(max_size=5))
def test_any_spec_is_an_slo_or_a_spec_error(spec, namespace):
    try:
        slo = slo_from_spec("x", namespace, spec, "f.yaml:1")
    except SpecError as err:
        assert err.field.startswith("spec")
    else:
        assert 0 < slo.objective < 100 and slo.period_s > 0 and slo.service
