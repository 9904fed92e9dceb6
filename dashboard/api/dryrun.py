"""GET /api/v1/dryrun?window=600: every dry-run AuthorizationPolicy (`istio.io/dry-run: "true"`), what its
Envoy shadow rules decided, and what the window's traffic predicts it would deny once enforced.

Per policy: the edges the replay says it would deny (requests/s, certain or hinging on path/method),
and per selected workload the sidecar's shadow counters (denied / allowed since the sidecar started)
where this backend can read them (the bundled mesh's sidecars; a cluster's are not scraped for them:
`shadow` is then null and `shadow_note` says why). Findings: MS5006 per workload whose shadow rules
denied requests, with the prediction beside. 503 without live parts.
"""
from __future__ import annotations

from typing import Any

import httpx
from flask import Flask

from dashboard.api.common import PREFIX, api_route, arg_float, check_known, live_backend
from dashboard.query import DataSource

MAX_WINDOW_S = 30 * 86400.0
STATS_TIMEOUT_S = 2.0


def _stats_urls(backend: Any, namespaces: set[str]) -> dict[tuple[str, str], str] | None:
    """(namespace, workload) -> the sidecar's Prometheus stats URL, for backends whose sidecars are reachable."""
    registry = getattr(getattr(backend, "mesh", None), "registry", None)
    if registry is None:
        return None
    return {(w.namespace, w.name): f"http://127.0.0.1:{w.stats_port}/stats/prometheus"
            for w in registry.workloads if w.namespace in namespaces and not getattr(w, "is_gateway", False)}


def shadow_by_workload(backend: Any, namespaces: set[str]) -> tuple[dict[tuple[str, str], Any] | None, str]:
    """Shadow counters per workload of the namespaces (None when unreadable here), and a note on where they came from."""
    from diagnose.whatif.dryrun import shadow_counts

    urls = _stats_urls(backend, namespaces)
    if urls is None:
        return None, "this backend's sidecar stats are not reachable from meshscope: prediction only"
    out, failed = {}, []
    with httpx.Client(timeout=STATS_TIMEOUT_S) as client:
        for key, url in sorted(urls.items()):
            try:
                got = shadow_counts(client.get(url).text)
            except httpx.HTTPError:
                failed.append(f"{key[0]}/{key[1]}")
                continue
            if got is not None:
                out[key] = got
    note = "read from each sidecar's /stats/prometheus (counts since the sidecar started)"
    return out, note + (f"; unreachable: {', '.join(failed)}" if failed else "")


def dry_run_report(backend: Any, window_s: float) -> dict[str, Any]:
    from diagnose.whatif.dryrun import dry_run_findings, predicted_denials
    from diagnose.whatif.replay import DRY_RUN

    snap = backend.snapshot()
    live = list(snap.objects)
    dry = [o for o in live if o.kind == "AuthorizationPolicy" and str(o.annotations.get(DRY_RUN, "")).lower() == "true"]
    if not dry:
        return {"window_s": window_s, "policies": [], "findings": [], "shadow_note": "no dry-run AuthorizationPolicy"}
    rates = backend.rates(window_s)
    counts, note = shadow_by_workload(backend, {str(o.namespace) for o in dry})
    predicted = predicted_denials(live, rates, window_s)
    policies = []
    for ap in dry:
        ref = f"{ap.namespace}/{ap.name}"
        shadow = None if counts is None else {f"{ns}/{wl}": {"denied": c.denied, "allowed": c.allowed, "engine": c.action}
                                              for (ns, wl), c in sorted(counts.items()) if ns == ap.namespace}
        policies.append({"policy": ref, "action": str(ap.spec.get("action") or "ALLOW").upper(),
                         "source": f"{ap.source.file}:{ap.source.line}" if ap.source else None,
                         "predicted": predicted.get(ref, []),
                         "predicted_rps": round(sum(e["rps"] for e in predicted.get(ref, [])), 6), "shadow": shadow})
    findings = dry_run_findings(live, counts or {}, rates, window_s)
    return {"window_s": window_s, "policies": policies, "findings": [f.to_dict() for f in findings], "shadow_note": note}


def register(server: Flask, source: DataSource) -> None:
    @server.route(f"{PREFIX}/dryrun")
    @api_route
    def api_dryrun():  # noqa: ANN202
        check_known({"window"})
        window = arg_float("window", 600.0, minimum=1.0, maximum=MAX_WINDOW_S)
        backend = live_backend(source, "dry-run results")
        return dry_run_report(backend, window)
