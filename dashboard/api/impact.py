"""POST /api/v1/impact: predict what a proposed change would break, from the last window's traffic.

Body (JSON): {"files": [{"name": "pa.yaml", "yaml": "..."}] | "yaml": "...", "window": "1h",
"namespace": "default", "max_broken_rps": 0, "delete": ["DestinationRule/bookinfo/reviews" | {kind, namespace,
name}]}: `delete` names live objects whose deletion is predicted (with or without proposed YAML). Or a raw YAML
body with ?window=&namespace=.
The answer is the impact report (per-edge impacts, the change's own config findings,
`breaks`); nothing is applied. Only a source over running parts (live config and rates) can
answer; others say 503.
"""
from __future__ import annotations

import math
import time
from typing import Any

from flask import Flask, request

from dashboard.api.common import PREFIX, api_route, check_known, live_backend
from dashboard.query import DataSource, QueryError
from mesh.config.limits import loads_json

MAX_BODY = 4 * 1024 * 1024


def _body() -> dict[str, Any]:
    if request.content_length and request.content_length > MAX_BODY:
        raise QueryError("body", f"the request body is over {MAX_BODY // 1048576} MiB")
    if request.is_json:
        try:  # bounded: JSON nested past the interpreter's limit raised RecursionError (a 500) in get_json
            data = loads_json(request.get_data(cache=True), "the request body", MAX_BODY)
        except ValueError as exc:  # InputLimitError is one
            raise QueryError("body", str(exc)[:200]) from None
        if not isinstance(data, dict):
            raise QueryError("body", "expected a JSON object with `files` or `yaml`")
        return data
    text = request.get_data(as_text=True)
    return {"yaml": text, "window": request.args.get("window"), "namespace": request.args.get("namespace"),
            "max_broken_rps": request.args.get("max_broken_rps"), "delete": request.args.get("delete")}


MAX_DELETE = 1000


def parse_delete(data: dict[str, Any]) -> list[Any]:
    """The objects to delete as sent: a list of "Kind/namespace/name" or {kind, namespace, name}. Whether each
    names a live object is decided with the live config (an unknown one is named in the answer, MS5009)."""
    refs = data.get("delete")
    if refs is None:
        return []
    if isinstance(refs, str):
        refs = [r for r in refs.replace(",", "\n").splitlines() if r.strip()]
    if not isinstance(refs, list) or len(refs) > MAX_DELETE:
        raise QueryError("delete", f"expected a list (at most {MAX_DELETE}) of Kind/namespace/name or {{kind, namespace, name}}")
    for i, r in enumerate(refs):
        if not isinstance(r, (str, dict)):
            raise QueryError(f"delete[{i}]", "expected Kind/namespace/name or {kind, namespace, name}")
    return refs


def parse_request(data: dict[str, Any]) -> tuple[list[tuple[str, str]], float, str, float]:
    """(files, window seconds, default namespace, max broken rps); QueryError naming the field otherwise."""
    from diagnose.whatif.run import DEFAULT_WINDOW_S, parse_window

    unknown = sorted(set(data) - {"files", "yaml", "window", "namespace", "max_broken_rps", "delete"})
    if unknown:
        raise QueryError(unknown[0], "unknown field (known: files, yaml, window, namespace, max_broken_rps, delete)")
    files: list[tuple[str, str]] = []
    if data.get("files") is not None:
        if not isinstance(data["files"], list):
            raise QueryError("files", "expected a list of {name, yaml}")
        for i, f in enumerate(data["files"]):
            if not isinstance(f, dict) or not isinstance(f.get("yaml"), str):
                raise QueryError(f"files[{i}]", "expected {name, yaml} with yaml a string")
            files.append((str(f.get("name") or f"files[{i}]"), f["yaml"]))
    if isinstance(data.get("yaml"), str) and data["yaml"].strip():
        files.append(("request", data["yaml"]))
    if not files and not parse_delete(data):
        raise QueryError("yaml", "no proposed objects: send `yaml`, `files` or `delete`")
    try:
        window = parse_window(data["window"]) if data.get("window") not in (None, "") else DEFAULT_WINDOW_S
    except ValueError as exc:
        raise QueryError("window", str(exc)) from None
    ns = data.get("namespace") or "default"
    if not isinstance(ns, str):
        raise QueryError("namespace", "expected a string")
    try:
        bar = float(data.get("max_broken_rps") or 0.0)
    except (TypeError, ValueError):
        raise QueryError("max_broken_rps", "expected a number of requests/s") from None
    if not math.isfinite(bar) or bar < 0:
        raise QueryError("max_broken_rps", "expected a finite number >= 0")
    return files, window, ns, bar


def predict_for(source: DataSource, files: list[tuple[str, str]], window: float, namespace: str = "default",
                bar: float = 0.0, delete: list[Any] | None = None) -> dict[str, Any]:
    """The impact answer for a source over running parts (API and the Config page's preview box)."""
    backend = live_backend(source, "impact predictions")
    from diagnose.whatif.run import impact, verdict

    snap = backend.snapshot()
    mc = snap.mesh_config
    reqs = getattr(source, "requests_between", None)  # access logs: paths, methods, headers replayed per request
    now = time.time()
    report = impact(list(snap.objects), files, backend.rates(window), window, default_namespace=namespace,
                    root_namespace=mc.root_namespace, trust_domain=mc.trust_domain,
                    requests=(lambda: reqs(now - window, now)) if reqs is not None else None,  # read on first need
                    delete=delete)
    return verdict(report, bar)


def register(server: Flask, source: DataSource) -> None:
    @server.route(f"{PREFIX}/impact", methods=["POST"])
    @api_route
    def api_impact():  # noqa: ANN202
        check_known(set() if request.is_json else {"window", "namespace", "max_broken_rps", "delete"})
        data = _body()
        files, window, ns, bar = parse_request(data)
        return predict_for(source, files, window, ns, bar, parse_delete(data))
