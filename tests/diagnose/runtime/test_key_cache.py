"""The live loop's key cache (`KeyCache`): a window decoded with the keys kept from earlier windows is the window
decoded from scratch, and so is what the rules find in it, whatever order rows arrive in and however often the
cache forgets (differential, over a real store's sliding windows)."""
from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from collector import schema as s
from collector.store import TelemetryStore
from diagnose.rules.runtime import RuntimeContext, analyze_runtime
from diagnose.rules.runtime.traffic import KeyCache, decode_requests
from tests.diagnose.runtime.tables import OUTCOMES, SERVER_OUTCOMES, T0, fqdn, requests

CALLERS = ["productpage-v1", "reviews-v2", "istio-ingressgateway", "unknown"]
SERVICES = [fqdn("reviews"), fqdn("ratings"), fqdn("details"), "unknown"]


def _batch(rng: random.Random, t: float) -> pd.DataFrame:
    """A poll's worth of rows: random callers, services, sides and outcomes (some unattributed, some unnamed)."""
    parts = []
    for _ in range(rng.randint(1, 4)):
        side = rng.choice(["source", "destination"])
        outcome = rng.choice(sorted(SERVER_OUTCOMES if side == "destination" else OUTCOMES))
        dst = rng.choice(SERVICES)
        df = requests(rng.choice(CALLERS), dst if dst != "unknown" else fqdn("x"), outcome, rng.randint(1, 6),
                      start=t - rng.uniform(0, 8), end=t, reporter=side)
        if dst == "unknown":  # no service matched: the authority names it
            df[s.DESTINATION_SERVICE] = None
            df[s.AUTHORITY] = rng.choice(["reviews:9080", "ratings", "10.0.0.1:80"])
        if rng.random() < 0.5:  # a bare log path of the bundled mesh's layout names an unattributed writer
            df[s.LOG_SOURCE] = f"/logs/bookinfo.{rng.choice(CALLERS[:3])}.log"
        # per row: combinations that differ in one column only
        df[s.ROUTE_NAME] = rng.choices([None, "default", "-", "reviews-v2"], k=len(df))
        df[s.UPSTREAM_CLUSTER] = rng.choices([None, "-", "outbound|9080|v2|reviews.bookinfo.svc.cluster.local"], k=len(df))
        if rng.random() < 0.3:  # the same line as the other side logs it: combinations that differ by reporter only
            df = pd.concat([df, df.assign(**{s.REPORTER: "destination" if side == "source" else "source"})])
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize("seed,max_size", [(1, 20_000), (2, 12)])
def test_a_window_decoded_with_kept_keys_is_the_window_decoded_from_scratch(seed: int, max_size: int) -> None:
    rng = random.Random(seed)
    now = [T0]
    store = TelemetryStore(window_s=120.0, clock=lambda: now[0])  # rows older than 2 minutes leave the store
    cache = KeyCache(max_size=max_size)
    derived_fresh, distinct = 0, set()  # distinct derived keys: raw combinations are at least as many
    for step in range(12):
        now[0] = T0 + 2.0 * step
        for _ in range(rng.randint(0, 3)):  # rows arrive late and out of order, in several commits per step
            store.add_requests(_batch(rng, now[0] - rng.choice([0.0, 0.5, 3.0, 15.0])))
        end = now[0] - 1.0
        window = store.requests(end - 20.0, end)
        kept, fresh = decode_requests(window, cache), decode_requests(window)
        np.testing.assert_array_equal(kept.gid, fresh.gid)
        np.testing.assert_array_equal(kept.t, fresh.t)
        pd.testing.assert_frame_equal(kept.combos, fresh.combos)
        derived_fresh += len(fresh.combos)
        distinct |= set(fresh.combos.itertuples(index=False, name=None))
        if step == 11:  # what a cycle finds, not only its keys
            ctx = dict(start=end - 20.0, end=end, requests=window)
            got = analyze_runtime(RuntimeContext(**ctx, key_cache=cache))
            want = analyze_runtime(RuntimeContext(**ctx))
            assert [(f.code, f.fingerprint, f.impact) for f in got] == [(f.code, f.fingerprint, f.impact) for f in want]
    # the cache did its work: most windows' combinations were found, not derived again; a small one forgot some
    if cache.cleared == 0:
        assert cache.derived < derived_fresh / 2
    assert (cache.cleared > 0) == (max_size < len(distinct))
