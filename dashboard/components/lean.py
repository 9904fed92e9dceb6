"""What the browser gets per graph element, and the rest kept on the server for the side panel.

At 10,000 workloads the page's elements are most of what it downloads, parses and
diffs. Cytoscape needs an element's id, ends, classes, position, label and the
scalar fields that selectors read (find/hide, health, mTLS); the nested ones
(response codes and flags, the services a node backs, badges) only the side panel
shows. They also defeat the component's refresh diff: it compares element data one
level deep, so a dict inside makes every element look changed on every refresh and
restyle. `lean` strips them; `FullData` remembers the full records of the latest
graphs so a click still shows everything.
"""
from __future__ import annotations

import hashlib
import pickle
import threading
from collections import OrderedDict
from typing import Any, Generic, TypeVar

LABEL_MAX = 40  # characters of a node label; the full name is in `name` (hover, side panel)
# scalar fields only the side panel shows; the browser's selectors (find/hide, health, mTLS) never read them
PANEL_ONLY = frozenset({"source_label", "target_label", "target_app", "health_reason", "p50_ms", "mtls_pct",
                        "mtls_intent", "rps_out", "cb_tripped"})


def truncate(text: str, limit: int = LABEL_MAX) -> str:
    """`text` cut to `limit` characters with an ellipsis in the middle, so both the start
    (app) and the end (version, hash suffix) of a long workload name stay readable."""
    if len(text) <= limit:
        return text
    head = (limit - 1) * 2 // 3
    return f"{text[:head]}\u2026{text[len(text) - (limit - 1 - head):]}"


def lean(elements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Elements with the scalar data fields the browser reads (node label truncated to LABEL_MAX).

    The joined edge labels (`lbl_rps_err`...) are left out too: the page's asset
    (assets/topology_render.js) joins them in the browser from label_rps/label_err/label_p95/lock,
    which is a third of a big graph's bytes saved on every load and refresh.
    """
    out = []
    scalar, drop = _SCALAR_TYPES, PANEL_ONLY
    for e in elements:
        d = e["data"]
        # exact type first (one set lookup); isinstance only for the rest (numpy scalars, str subclasses)
        data = {k: v for k, v in d.items() if k not in drop and (type(v) in scalar or isinstance(v, _SCALARS))
                and not (k[:4] == "lbl_")}
        if "source" not in d:
            label = data.get("label")
            if isinstance(label, str) and len(label) > LABEL_MAX:
                data["label"] = truncate(label)
        out.append({**e, "data": data})
    return out


_SCALARS = (str, int, float, bool)
_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})


class FullData:
    """The full data of every element of the last few graphs sent, by view and element id.

    A view is whatever decides the graph's content (graph type, namespaces, window, end...);
    the side panel asks with the same view and the clicked id. Bounded: a few views, the
    newest kept. Thread-safe: Flask serves callbacks on threads.
    """

    def __init__(self, views: int = 8) -> None:
        # by (view, shape): one view can be drawn plain, grouped or focused (the server prepares the first two at
        # start), and a click must find the one it was drawn in; a newer graph of the same shape replaces the older
        self._views: Recent[tuple, tuple[list, dict[str, dict[str, Any]]]] = Recent(views)

    def remember(self, view: tuple, elements: list[dict[str, Any]], shape: str = "") -> None:
        """Keep the elements' data by id; the same list again (a kept layout, `pages.topology`) is not re-indexed."""
        key = (view, shape)
        kept = self._views.get(key)
        if kept is not None and kept[0] is elements:
            self._views.put(key, kept)  # the newest again
            return
        self._views.put(key, (elements, {e["data"]["id"]: e["data"] for e in elements}))

    def get(self, view: tuple, element_id: str) -> dict[str, Any] | None:
        """The element's full data in `view` (its newest graph first), else in the newest view that has it, else None."""
        entries = self._views.items_newest_first()
        for same in (True, False):
            for (v, _), (_, by_id) in entries:
                if (v == view) is same and element_id in by_id:
                    return dict(by_id[element_id])
        return None


K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """The last few values put, by key, the newest kept (a bounded map; thread-safe: Flask serves callbacks
    on threads). What the server sent the browser, kept for the callbacks that ask about it later."""

    def __init__(self, limit: int) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._limit:
                self._items.popitem(last=False)

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._items.get(key)

    def items_newest_first(self) -> list[tuple[K, V]]:
        with self._lock:
            return list(reversed(self._items.items()))


def view_key(*parts: Any) -> tuple:
    """A hashable view key from callback values (lists become sorted tuples)."""
    return tuple(tuple(sorted(p)) if isinstance(p, list) else p for p in parts)


def digest(elements: Any) -> str:
    """A short fingerprint of the elements (or a canvas graph's columns) as sent: a refresh that would send the
    same ones sends nothing.

    At 10,000 workloads an identical refresh is ~9 MB the browser parses and diffs element by
    element for seconds of main-thread time; the fingerprint costs the server a pickle and a hash.
    """
    return hashlib.blake2b(pickle.dumps(elements, protocol=5), digest_size=16).hexdigest()
