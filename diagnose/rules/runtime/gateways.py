"""Which callers are gateways: told by what a workload is, never by what it is called.

A gateway forwards strangers' requests (scanners, typos), so its 404s are not the mesh asking for the wrong
thing, and no route serving them is outside traffic, not a broken route. A workload is a gateway when its labels
say so as Istio and Kiali read them (`istio: ingressgateway|egressgateway`, the Gateway API's
`gateway.networking.k8s.io/gateway-name`, Istio's `istio.io/gateway-name`) or when an Istio Gateway's selector
picks it. A workload merely named "gateway-api-client" is not one; an ingress named "edge" is.
Only when the snapshot knows none of the callers (no config, or a cluster whose pods were not read) does the
name Istio's install gives its gateways (istio-ingressgateway, istio-egressgateway) stand in.
"""
from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

import pandas as pd

from mesh.config.kinds import GATEWAY_POD_NAME_LABELS

GATEWAY_ROLE = ("istio", ("ingressgateway", "egressgateway"))
INSTALL_NAMES = ("istio-ingressgateway", "istio-egressgateway")
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # a snapshot is read-only: one answer each


def _is_gateway_labels(labels: dict[str, Any]) -> bool:
    return labels.get(GATEWAY_ROLE[0]) in GATEWAY_ROLE[1] or any(k in labels for k in GATEWAY_POD_NAME_LABELS)


def gateway_workloads(snapshot: Any) -> tuple[set[tuple[str, str | None]], set[tuple[str, str | None]]]:
    """(gateways, every workload) as (name, namespace), from the snapshot's pods and pod-template owners."""
    if snapshot is None or not hasattr(snapshot, "workloads"):
        return set(), set()
    try:
        return _CACHE[snapshot]
    except (KeyError, TypeError):
        pass
    workloads = snapshot.workloads()
    gateways = {(w.name, w.namespace) for w in workloads if _is_gateway_labels(w.labels or {})}
    for gw in snapshot.of_kind("Gateway"):
        sel = gw.spec.get("selector") if isinstance(gw.spec, dict) else None
        if isinstance(sel, dict) and sel:
            gateways |= {(w.name, w.namespace) for w in snapshot.matching_workloads(None, sel, any_namespace=True)}
    out = (gateways, {(w.name, w.namespace) for w in workloads})
    try:
        _CACHE[snapshot] = out
    except TypeError:  # not weakly referable: answered again next time
        pass
    return out


def _owners(name: str) -> list[str]:
    """The config names a runtime name may stand for: itself, or a Deployment it names itself after (edge-7d9f)."""
    return [name] + [name[:i] for i, ch in enumerate(name) if ch == "-" and i > 0]


def caller_namespace(ns: Any) -> str | None:
    return None if ns is None or str(ns) in ("", "unknown", "nan", "None") else str(ns)


def _index(pool: set[tuple[str, str | None]]) -> dict[str, set[str | None]]:
    out: dict[str, set[str | None]] = {}
    for name, ns in pool:
        out.setdefault(name, set()).add(ns)
    return out


def gateway_callers(snapshot: Any, callers: Iterable[tuple[Any, Any]]) -> set[tuple[str, str | None]]:
    """The callers, as (workload name, namespace or None), that are gateways."""
    callers = {(str(n), caller_namespace(ns)) for n, ns in callers}
    gateways, known = gateway_workloads(snapshot)
    gw_index, known_index = _index(gateways), _index(known)

    def matches(index: dict[str, set[str | None]], name: str, ns: str | None) -> bool:
        return any(ns is None or None in index.get(o, ()) or ns in index.get(o, ()) for o in _owners(name) if o in index)

    if not any(matches(known_index, n, ns) for n, ns in callers):  # nothing known about any caller: the install's names
        return {(n, ns) for n, ns in callers if any(o in INSTALL_NAMES for o in _owners(n))}
    return {(n, ns) for n, ns in callers if matches(gw_index, n, ns)}


def is_gateway(snapshot: Any, names: pd.Series, namespaces: pd.Series | None = None) -> pd.Series:
    """Boolean mask over a column of caller names: which rows' caller is a gateway (decided once per caller)."""
    if names.empty:
        return pd.Series(False, index=names.index)
    pairs = pd.DataFrame({"n": names.astype(str),
                          "ns": namespaces.astype(str) if namespaces is not None else ""}, index=names.index)
    unique = pairs.drop_duplicates()
    gw = gateway_callers(snapshot, zip(unique["n"], unique["ns"]))
    hit = [(n, ns) for n, ns in zip(unique["n"], unique["ns"]) if (n, caller_namespace(ns)) in gw]
    if not hit:
        return pd.Series(False, index=names.index)
    return pd.Series(pd.MultiIndex.from_frame(pairs).isin(hit), index=names.index)
