"""The upstream keep-alive race, told apart from an mTLS break (both look like `503 UC connection_termination`).

Envoy reuses a pooled HTTP/1.1 connection; if the app closes it as idle at the moment a
request is sent on it (the app's keep-alive timeout is shorter than Envoy's upstream idle
timeout, 1 h by default), the request is reset before any response: `503 UC` with
`upstream_reset_before_response_started{connection_termination}`. On real traffic that is the
most common cause of the flag (istio#55138), so the flag alone must not mean "mTLS mismatch".

An mTLS intent conflict is a separate claim that needs its own evidence
(`mtls_conflict`): the server's listener refused plaintext with a TLS error, or the config
says so (the destination requires mTLS, STRICT, while the client's DestinationRule disables
TLS). MS3001 fires only with that evidence; the same rows without it are this rule's.
Resets the destination sidecar reports on its hop to the local app (reporter=destination,
plaintext on localhost) can never be an mTLS problem.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from diagnose.catalog import make
from diagnose.findings import Finding
from diagnose.rules.runtime.evidence import Hurt, hurt_by_service
from diagnose.rules.runtime.traffic import (COUNT, DETAILS, DST, FIRST, FLAGS, LAST, SIDE, RuntimeContext, has_flag,
                                           listener_refusal)


def uc_termination(c: pd.DataFrame) -> pd.Series:
    """Rows reset before any response because the upstream connection was terminated."""
    return has_flag(c[FLAGS], "UC") & c[DETAILS].str.contains("connection_termination", regex=False)


def config_mtls_conflict(snapshot: Any, host: str, clusters: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The config's own mTLS intent conflict for `host`: STRICT on the server, TLS disabled by the client's DR (for
    the clusters the requests went to, when the access log names them: a port's or subset's setting rules)."""
    if snapshot is None:
        return None
    from diagnose.correlate import _tls_settings, destination_rules_for, peer_authentications_for

    strict = peer_authentications_for(snapshot, host, "STRICT")
    if not strict:
        return None
    for dr in destination_rules_for(snapshot, host):
        for path, tls in _tls_settings(dr, clusters):
            if tls.get("mode") == "DISABLE":
                return {"destination_rule": f"{dr.namespace}/{dr.name}", "field": path,
                        "peer_authentication": f"{strict[0].namespace}/{strict[0].name}"}
    return None


def mtls_conflict(hurt: Hurt, ctx: RuntimeContext) -> dict[str, Any] | None:
    """Evidence that a UC is an mTLS intent conflict (server TLS errors and/or the config's), else None."""
    out: dict[str, Any] = {}
    errors = ctx.server_tls_errors
    if hurt.destination in errors.index and int(errors[hurt.destination]) > 0:
        out["server_tls_errors"] = int(errors[hurt.destination])
    elif len(errors):
        # plaintext listener refusals often name no service (no SNI, no Host): those count for a destination
        # when they happen while its requests are reset (earlier refusals still in the window do not)
        c = ctx.calls
        refused = c[listener_refusal(c) & ~c[DST].astype(str).str.contains(".svc.", regex=False)]
        if hurt.first is not None and hurt.last is not None:
            refused = refused[(refused[LAST] >= hurt.first - 1.0) & (refused[FIRST] <= hurt.last + 1.0)]
        if int(refused[COUNT].sum()) > 0:
            out["server_tls_errors"] = int(refused[COUNT].sum())
    conflict = config_mtls_conflict(ctx.snapshot, hurt.destination, hurt.clusters)
    if conflict:
        out["config_conflict"] = conflict
    return out or None


@dataclass(frozen=True)
class KeepAliveRace:
    min_count: float = 2.0  # one reset is noise (a config push drains pooled connections too)
    # a race recurs while the timeouts stay crossed; resets all within this span are one burst: a config push
    # draining the server's listener, a restart (seen in the eval: 2 of 72 at once after an AuthorizationPolicy)
    min_span_s: float = 1.0
    name: str = "keepalive.KeepAliveRace"
    description: str = "UC connection_termination without evidence of an mTLS conflict: the upstream keep-alive race"
    codes: tuple[str, ...] = ("MS3040",)

    def analyze(self, ctx: RuntimeContext) -> list[Finding]:
        c = ctx.calls
        if c.empty:
            return []
        rows = c[uc_termination(c)]
        out: list[Finding] = []
        seen: set[str] = set()
        # the destination side first: its reset is on the hop to the local app, which never speaks mTLS
        for side in ("destination", "source"):
            for hurt in hurt_by_service(ctx, rows[rows[SIDE] == side], ctx.options.get("min_count", self.min_count)):
                if hurt.destination in seen:
                    continue
                if side == "source" and mtls_conflict(hurt, ctx):
                    continue  # MS3001's, with its evidence
                if hurt.first is not None and hurt.last is not None and hurt.last - hurt.first < self.min_span_s:
                    continue  # one burst, not a race
                seen.add(hurt.destination)
                args = hurt.args()
                callers = []
                if side == "destination":  # name the callers the client sidecars saw (they may have retried)
                    callers = hurt_by_service(ctx, c[(c[SIDE] == "source") & (c[DST] == hurt.destination)])
                    if callers and callers[0].sources:
                        args["source"] = callers[0].sources
                f = make("MS3040", resource=hurt.service_ref(), **args)
                f.evidence = hurt.evidence(rule=self.name, mtls_evidence="none: no server TLS errors, no STRICT "
                                           "PeerAuthentication with a DestinationRule disabling TLS",
                                           client_edges=callers[0].edges if callers else [])
                f.impact = hurt.impact()
                out.append(f)
        return out


RULES = [KeepAliveRace()]
