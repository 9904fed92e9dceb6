"""Inverted label indexes, so selector questions cost a few set operations instead of a scan.

The security rules ask, per policy and per service, "which workloads does this
selector pick?" and, per workload, "which selectors pick me?". On a mesh of
thousands of workloads a linear `labels_match` scan for each question made the
rules quadratic; posting sets keyed by (label, value) keep them near linear.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class LabelIndex(Generic[T]):
    """Items with label sets; `select(selector)` returns those whose labels contain the selector."""

    def __init__(self, items: Iterable[tuple[T, dict[str, str]]]) -> None:
        self._items: list[T] = []
        self._postings: dict[tuple[str, str], set[int]] = defaultdict(set)
        for i, (item, labels) in enumerate(items):
            self._items.append(item)
            for kv in labels.items():
                self._postings[kv].add(i)

    def select(self, selector: dict[str, str] | None) -> list[T]:
        """Items whose labels include every selector pair (an empty selector picks all), in insertion order."""
        if not selector:
            return list(self._items)
        sets = sorted((self._postings.get(kv, set()) for kv in selector.items()), key=len)
        hits = set.intersection(*sets) if sets else set()
        return [self._items[i] for i in sorted(hits)]


class SelectorIndex(Generic[T]):
    """Items with selectors; `matching(labels)` returns those whose selector the labels satisfy."""

    def __init__(self, items: Iterable[tuple[T, dict[str, str]]]) -> None:
        self._items: list[T] = []
        self._sizes: list[int] = []
        self._postings: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._match_all: list[int] = []
        for i, (item, selector) in enumerate(items):
            self._items.append(item)
            self._sizes.append(len(selector))
            if not selector:
                self._match_all.append(i)
            for kv in selector.items():
                self._postings[kv].append(i)

    def matching(self, labels: dict[str, str]) -> list[T]:
        counts: dict[int, int] = defaultdict(int)
        for kv in labels.items():
            for i in self._postings.get(kv, ()):
                counts[i] += 1
        hits = [i for i, n in counts.items() if n == self._sizes[i]] + self._match_all
        return [self._items[i] for i in sorted(hits)]
