"""Failures only the server's listener saw: the callers' retries (or other endpoints) answered every request.

A plaintext connection to an mTLS-only port is refused in the server's listener (`NR filter_chain_not_found`,
no service named, no caller known) and the client sees `503 UC`. When the route retries resets on another
host, or only some endpoints require mTLS, the client's log shows success: the refusals are all there is. The
service is degraded, not failing (every refused attempt costs a retry, and the next endpoint to turn STRICT
fails for real), and the cause is the same config conflict as MS3001's: it is MS3001, marked `masked`, graded
by the share of attempts refused, never above a warning. The refusing workload is the log's writer; its
services come from the config's selectors; its callers are the clients the service had in the window.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diagnose.catalog import make
from diagnose.findings import Finding
from diagnose.rules.runtime.evidence import hurt_by_service
from diagnose.rules.runtime.gateways import caller_namespace
from diagnose.rules.runtime.keepalive import config_mtls_conflict, uc_termination
from diagnose.rules.runtime.traffic import (DST, DST_WL, SIDE, SRC, SRC_NS, RuntimeContext, _prefixes,
                                           listener_refusal)

_MISSING = {"", "unknown", "-", "nan", "None"}


def _services_of(snapshot: Any, workload: str, namespace: str | None) -> list[str]:
    """Services selecting a runtime workload (a Deployment's name, or a pod's that starts with it)."""
    from diagnose.correlate import ServiceIndex

    by = ServiceIndex.of(snapshot).by_workload
    for name in _prefixes(workload):
        hits = by.get((namespace, name)) if namespace else next(
            (v for (ns, n), v in by.items() if n == name), None)
        if hits:
            return hits
    return []


@dataclass(frozen=True)
class MaskedMTLSRefusals:
    min_count: float = 3.0  # a refusal or two is a client probing, or a push draining connections
    name: str = "masked.MaskedMTLSRefusals"
    description: str = "plaintext connections an mTLS-only listener refused while the callers saw no failure"
    codes: tuple[str, ...] = ("MS3001",)

    def analyze(self, ctx: RuntimeContext) -> list[Finding]:
        c = ctx.calls
        if c.empty or ctx.snapshot is None:
            return []
        refused = c[listener_refusal(c)]
        if refused.empty:
            return []
        # services whose callers saw the resets themselves: MS3001 (or the keep-alive race) speaks for them
        seen_by_callers = set(c.loc[(c[SIDE] == "source") & uc_termination(c), DST])
        writer = refused[DST_WL].where(~refused[DST_WL].isin(_MISSING), refused[SRC])
        pairs = refused.assign(_wl=writer)[["_wl", SRC_NS]].drop_duplicates()
        owner: dict[tuple[str, str], str] = {}
        for wl, ns in pairs.itertuples(index=False, name=None):  # one per refusing workload
            services = _services_of(ctx.snapshot, str(wl), caller_namespace(ns))
            if len(services) == 1:  # a workload behind several services: which one was refused is unknown
                owner[(wl, ns)] = services[0]
        if not owner:
            return []
        service = [owner.get(k) for k in zip(writer, refused[SRC_NS])]
        rows = refused.assign(**{DST: service, SRC: "unknown", SRC_NS: "unknown"})
        rows = rows[rows[DST].notna() & ~rows[DST].isin(seen_by_callers)]
        out = []
        for hurt in hurt_by_service(ctx, rows, self.min_count):
            conflict = config_mtls_conflict(ctx.snapshot, hurt.destination)
            if conflict is None:  # refusals with no mTLS conflict in the config: nothing to blame here
                continue
            callers = hurt_by_service(ctx, c[(c[SIDE] == "source") & (c[DST] == hurt.destination)])
            args = hurt.args()
            if callers and callers[0].sources:
                args["source"] = callers[0].sources
            refusing = sorted({str(w) for w, ns in owner if owner[(w, ns)] == hurt.destination})
            f = make("MS3001", resource=hurt.service_ref(), **args)
            f.message = (f"{args['source']} -> {hurt.destination}: {args['count']} plaintext connections refused by the "
                         f"mTLS-only listener of {', '.join(refusing)} while the callers' requests were answered "
                         "(retries or other endpoints hid them): degraded, the client sends plaintext to a server "
                         "that requires mTLS")
            f.evidence = hurt.evidence(rule=self.name, masked=True, refused_by=refusing, config_conflict=conflict,
                                       server_tls_errors=args["count"],
                                       client_edges=callers[0].edges if callers else [])
            f.impact = hurt.impact()
            out.append(f)
        return out


RULES = [MaskedMTLSRefusals()]
