"""`element_series.aligned`: every frame gets every series, labels as strings, rates summed per point.

Pins what the faster label cast (distinct values only) must keep from the plain
`astype(str)` of every row: same categories, missing labels missing.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from collector import schema as s
from meshscope.element_series import aligned
from tests.meshscope.test_element_metrics import recorded_frame


def test_frames_share_rows_labels_become_strings_and_missing_labels_stay_missing():
    base = recorded_frame()
    first = base.iloc[: len(base) // 2].copy()
    second = base.iloc[len(base) // 4:].copy()
    second[s.RESPONSE_CODE] = second[s.RESPONSE_CODE].astype(object)
    second.loc[second.index[:3], s.RESPONSE_CODE] = np.nan  # a series without a code
    third = base.drop(columns=[s.RESPONSE_FLAGS])  # a frame without a label column
    frames = [first, base.iloc[0:0], second, third]
    out = aligned(frames)
    assert out[1] is frames[1]  # an empty point stays empty
    keys = [c for c in base.columns if c != s.RATE]
    stacked = pd.concat([first, second, third], ignore_index=True)
    for f in (out[0], out[2], out[3]):
        assert len(f) == len(out[0]) and list(f.columns) == list(base.columns)
        for c in keys:
            if c != s.LE:
                pd.testing.assert_series_equal(f[c], out[0][c])
                assert set(f[c].cat.categories) == set(stacked[c].dropna().astype(str))
    assert out[2][s.RESPONSE_CODE].isna().sum() == 3
    no_flags = out[3][s.RESPONSE_FLAGS].isna().to_numpy()  # the third frame's series: other series than the rest's
    assert np.isclose(out[3].loc[no_flags, s.RATE].sum(), third[s.RATE].sum())
    assert out[0].loc[no_flags, s.RATE].sum() == 0 and out[2].loc[no_flags, s.RATE].sum() == 0
    for frame, got in ((first, out[0]), (second, out[2]), (third, out[3])):
        assert np.isclose(got[s.RATE].sum(), frame[s.RATE].sum())
