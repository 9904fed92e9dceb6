"""meshscope.time_travel.graph_diff: two windows compared from the backend's rate frames."""
from __future__ import annotations

from meshscope.time_travel import graph_diff, graph_ending
from tests.topology.frames import both, frame

T = 1_700_000_000.0


class Backend:
    """Rates as a backend answers them: one frame per window end, and a count of the reads."""

    def __init__(self):
        self.reads: list[float] = []

    def rates(self, window_s, end):  # noqa: ANN001
        self.reads.append(end)
        if end < T:  # the earlier window: details healthy
            return frame(both("productpage-v1", "details-v1", 10.0), both("productpage-v1", "reviews-v2", 3.0))
        return frame(both("productpage-v1", "reviews-v2", 1.0), both("productpage-v1", "reviews-v2", 2.0, code="503", flags="UF"))

    def snapshot(self):
        return None


class Source:
    def __init__(self):
        self.backend = Backend()

    def now(self) -> float:
        return T


def test_a_held_after_graph_gives_the_same_diff_with_one_read_instead_of_two():
    built = Source()
    plain = graph_diff(built, "workload", None, 300.0, T - 300, T)
    assert sorted(built.backend.reads) == [T - 300, T]
    held = Source()
    after = graph_ending(held, "workload", None, 300.0, T)
    held.backend.reads.clear()
    reused = graph_diff(held, "workload", None, 300.0, T - 300, T, after=after)
    assert held.backend.reads == [T - 300]  # only the earlier window is read
    assert reused["summary"] == plain["summary"] and reused["edges"] == plain["edges"]
    assert plain["summary"]["vanished"] == 1 and plain["summary"]["changed"] == 1  # details gone, reviews worse
