"""A canary that fails on one path only: judged per request path from the access logs.

Metrics carry no path, so a candidate whose one endpoint answers 500 to every request, on a path that is
0.5 % of the service's traffic, moves the window's error rate by half a point: under the rollback margin,
and the old rule promoted it. Where the access logs are at hand (the running stack's requests table), the
requests of the two versions are grouped by path (query string dropped, id-like segments folded) and each
path both versions served is compared with Fisher's exact test, Bonferroni-corrected over the paths
tested. A path whose candidate error rate is higher by at least PATH_MARGIN with significance turns the
verdict into a rollback naming the path. Paths only one version served, or too few requests on a path,
are not judged.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from collector import schema
from diagnose.canary.verdict import INSUFFICIENT, ROLLBACK, Thresholds, Verdict, fisher_greater

PATH_MARGIN = 0.05  # a path's error rate this much higher (5 points) is a regression worth a rollback
MIN_PATH_REQUESTS = 10  # per version and path: fewer is not judged
MAX_PATHS = 50  # the busiest paths of a service are tested; the Bonferroni factor counts them
_ID = re.compile(r"^(\d+|[0-9a-fA-F-]{16,}|[0-9a-fA-F]{8,})$")


def _decode(col: pd.Series, fn: Callable[[str], str]) -> np.ndarray:
    """`fn` applied to the distinct values of a column only, then spread over the rows by category code."""
    cat = col.astype(str).astype("category")
    names = np.asarray([fn(c) for c in cat.cat.categories], dtype=object)
    return names[cat.cat.codes.to_numpy()] if len(names) else np.asarray([], dtype=object)


def _fold(path: str) -> str:
    path = path.split("?", 1)[0]
    return "/".join("{id}" if _ID.match(seg) else seg for seg in path.split("/"))


def normalise(paths: pd.Series) -> np.ndarray:
    """`/api/items/1234?x=1` -> `/api/items/{id}`, computed over the distinct paths only."""
    return _decode(paths, _fold)


def _version_of(objects: list[Any]) -> dict[tuple[str, str], str]:
    from mesh.controlplane.registry import workloads_from
    try:
        return {(w.namespace, w.name): w.version for w in workloads_from(objects)}
    except Exception:  # noqa: BLE001 - a config that does not build workloads: fall back to names
        return {}


def apply(verdicts: list[Verdict], requests: pd.DataFrame | None, objects: list[Any],
          th: Thresholds = Thresholds()) -> None:
    """Turn a promote/hold into a rollback where one path regresses; add `evidence.paths` to each judged verdict."""
    judged = [v for v in verdicts if v.verdict not in (INSUFFICIENT, ROLLBACK)]
    if not judged or requests is None or requests.empty or schema.PATH not in requests.columns:
        return
    req = requests
    if schema.REPORTER in req.columns and (req[schema.REPORTER].astype(str) == "destination").any():
        req = req[req[schema.REPORTER].astype(str) == "destination"]
    hosts = {v.service for v in judged}
    req = req[req[schema.DESTINATION_SERVICE].astype(str).isin(hosts)]
    if req.empty:
        return
    versions = _version_of(objects)

    def version(key: str) -> str:
        ns, _, wl = key.partition("/")
        return versions.get((ns, wl)) or wl.rsplit("-", 1)[-1]
    frame = pd.DataFrame({
        "host": req[schema.DESTINATION_SERVICE].astype(str).to_numpy(),
        "ver": _decode(req[schema.DESTINATION_WORKLOAD_NAMESPACE].astype(str) + "/"
                       + req[schema.DESTINATION_WORKLOAD].astype(str), version),
        "path": normalise(req[schema.PATH]),
        "err": req[schema.RESPONSE_CODE].astype(str).str.startswith("5").to_numpy()})
    counts = frame.groupby(["host", "ver", "path"], sort=False)["err"].agg(["size", "sum"])
    for v in judged:
        try:
            s = counts.loc[(v.service, v.stable)]
            c = counts.loc[(v.service, v.candidate)]
        except KeyError:
            continue
        both = s.join(c, how="inner", lsuffix="_s", rsuffix="_c")
        both = both[(both["size_s"] >= MIN_PATH_REQUESTS) & (both["size_c"] >= MIN_PATH_REQUESTS)]
        both = both.assign(total=both["size_s"] + both["size_c"]).nlargest(MAX_PATHS, "total")
        if both.empty:
            continue
        k = len(both)
        rows = []
        for path, r in both.iterrows():
            rate_s, rate_c = r["sum_s"] / r["size_s"], r["sum_c"] / r["size_c"]
            p = min(1.0, fisher_greater(r["sum_s"], r["size_s"], r["sum_c"], r["size_c"]) * k) \
                if rate_c > rate_s else 1.0
            rows.append({"path": str(path), "requests": {"stable": int(r["size_s"]), "candidate": int(r["size_c"])},
                         "error_rate": {"stable": float(rate_s), "candidate": float(rate_c)}, "p_value": float(p),
                         "regressed": bool(p < th.alpha and rate_c - rate_s >= PATH_MARGIN)})
        rows.sort(key=lambda x: (not x["regressed"], x["p_value"]))
        v.evidence["paths"] = rows[:10]
        v.evidence.setdefault("test", {})
        v.evidence["test"] = {**v.evidence["test"], "paths": f"one-sided Fisher exact per path, Bonferroni over {k} "
                              "paths both versions served (access logs)"}
        bad = [x for x in rows if x["regressed"]]
        if bad:
            worst = bad[0]
            v.verdict = ROLLBACK
            v.confidence = round(1.0 - worst["p_value"], 6)
            v.reason = (f"{v.candidate} is worse than {v.stable} on {len(bad)} path{'s' if len(bad) > 1 else ''}: "
                        f"{worst['path']} fails {worst['error_rate']['candidate']:.1%} of "
                        f"{worst['requests']['candidate']} requests vs {worst['error_rate']['stable']:.1%} "
                        f"(p={worst['p_value']:.2g} over {k} paths); the whole window's error rate "
                        f"{v.evidence['error_rate']['candidate']:.2%} vs {v.evidence['error_rate']['stable']:.2%} "
                        "hides it")


def reader(requests: Callable[[float, float], pd.DataFrame | None] | None) -> Callable[[float, float], Any]:
    """A requests reader that answers None instead of raising (a source without access logs judges on metrics)."""
    def read(start: float, end: float) -> pd.DataFrame | None:
        if requests is None:
            return None
        try:
            return requests(start, end)
        except Exception:  # noqa: BLE001 - no logs: the metrics' verdict stands
            return None
    return read


__all__ = ["apply", "normalise", "reader", "PATH_MARGIN"]
