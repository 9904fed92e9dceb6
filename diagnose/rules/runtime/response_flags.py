"""Envoy response flags mapped to causes (envoy-feasibility.md §3 failure matrix).

Each rule selects the summary rows that show one cause (a flag, sometimes with
its response-code details) on the side of the call that observes it, and
reports one finding per hurt destination service. Which config object is to
blame is decided afterwards by `diagnose.correlate`, which reads the snapshot.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from diagnose.findings import Finding
from diagnose.catalog import make
from diagnose.rules.runtime.evidence import Hurt, hurt_by_service
from diagnose.rules.runtime.keepalive import config_mtls_conflict, mtls_conflict
from diagnose.rules.runtime.traffic import DETAILS, FLAGS, SIDE, TFR, RuntimeContext, has_flag, listener_refusal

TLS_TEXT = r"TLS_error|CERTIFICATE|SSL|handshake|PEER_DID_NOT"
Selector = Callable[[pd.DataFrame], pd.Series]


def _tls(calls: pd.DataFrame) -> pd.Series:
    return (calls[DETAILS] + " " + calls[TFR]).str.contains(TLS_TEXT, regex=True, case=False)


def tls_reason(hurt: Hurt) -> str:
    """A short reason from Envoy's failure text, e.g. CERTIFICATE_VERIFY_FAILED (SAN matcher)."""
    text = " ".join(list(hurt.transport_failures) + list(hurt.details))
    m = re.search(r"OPENSSL_internal:([A-Z0-9_]+)", text)
    reason = m.group(1) if m else "TLS error"
    if "SAN_matcher" in text or "SAN matcher" in text:
        reason += " (peer certificate SAN does not match)"
    return reason


def connect_reason(hurt: Hurt) -> str:
    text = " ".join(list(hurt.transport_failures) + list(hurt.details))
    m = re.search(r"(delayed_connect_error:[A-Za-z_]+|remote_connection_failure|connection_failure|overflow)", text)
    return m.group(1).replace("_", " ").strip() if m else "connection failure"


@dataclass(frozen=True)
class FlagRule:
    """One response-flag cause: which rows show it, on which side, and the code it reports."""

    name: str
    description: str
    code: str
    side: str
    select: Selector
    args: Callable[[Hurt, RuntimeContext], dict[str, Any]] = field(default=lambda h, c: {})
    # evidence beyond the flag a cause needs (e.g. MS3001: an mTLS intent conflict); None = the rows suffice
    require: Callable[[Hurt, RuntimeContext], bool] | None = None

    @property
    def codes(self) -> tuple[str, ...]:
        return (self.code,)

    def analyze(self, ctx: RuntimeContext) -> list[Finding]:
        calls = ctx.calls
        if calls.empty:
            return []
        rows = calls[(calls[SIDE] == self.side) & self.select(calls)]
        findings = []
        for hurt in hurt_by_service(ctx, rows, ctx.options.get("min_count", 1.0)):
            if self.require is not None and not self.require(hurt, ctx):
                continue
            extra = self.args(hurt, ctx)
            f = make(self.code, resource=hurt.service_ref(), **hurt.args(), **extra)
            f.evidence = hurt.evidence(rule=self.name, **extra)
            f.impact = hurt.impact()
            findings.append(f)
        return findings


def _server_tls_errors(hurt: Hurt, ctx: RuntimeContext) -> dict[str, Any]:
    """The evidence of an mTLS intent conflict (server TLS errors and/or the config's), see keepalive.mtls_conflict."""
    return mtls_conflict(hurt, ctx) or {}


def _inferred_mtls(hurt: Hurt, ctx: RuntimeContext) -> bool:
    """Metrics only (no details): a UC toward an mTLS conflict is the inferred mismatch (MS3041), not a reset."""
    return not hurt.details and config_mtls_conflict(ctx.snapshot, hurt.destination, hurt.clusters) is not None


def _uc_mtls(c: pd.DataFrame) -> pd.Series:
    return has_flag(c[FLAGS], "UC") & c[DETAILS].str.contains("connection_termination", regex=False)


def _uc_other(c: pd.DataFrame) -> pd.Series:
    return (has_flag(c[FLAGS], "UC") & ~c[DETAILS].str.contains("connection_termination", regex=False)) | \
        has_flag(c[FLAGS], "UR") | has_flag(c[FLAGS], "LR")


# URX says only that the retries ran out; the cause is the last attempt's, named by its own flag when it has one
# (a per-try timeout logs "UT,URX", a reset "UC,URX"): then it is that flag's finding, not a connect failure
LAST_ATTEMPT_CAUSES = r"(?:^|,)(?:UT|UC|UR|UO|UH|LR|NC)(?:,|$)"


def _connect(c: pd.DataFrame) -> pd.Series:
    """Connect failures: UF, or URX when no other flag names why the last attempt failed."""
    retried_out = has_flag(c[FLAGS], "URX") & ~c[FLAGS].str.contains(LAST_ATTEMPT_CAUSES, regex=True)
    return has_flag(c[FLAGS], "UF") | retried_out


def _first_flag(flags: tuple[str, ...]) -> Callable[[Hurt, RuntimeContext], dict[str, Any]]:
    def args(h: Hurt, ctx: RuntimeContext) -> dict[str, Any]:
        return {"flag": next((f for f in h.flags if f in flags), flags[0])}
    return args


RULES: list[FlagRule] = [
    FlagRule("response_flags.MTLSMismatch",
             "UC with connection termination: plaintext sent to a server that requires mTLS",
             "MS3001", "source", _uc_mtls, _server_tls_errors,
             require=lambda h, c: mtls_conflict(h, c) is not None),  # the flag alone is the keep-alive race too
    FlagRule("response_flags.TLSHandshakeFailure",
             "UF/URX with a TLS error: certificate, SAN or TLS settings mismatch",
             "MS3002", "source", lambda c: _connect(c) & _tls(c), lambda h, c: {"reason": tls_reason(h)}),
    FlagRule("response_flags.UpstreamConnectFailure",
             "UF/URX without a TLS error: nothing accepts connections upstream",
             "MS3003", "source", lambda c: _connect(c) & ~_tls(c), lambda h, c: {"reason": connect_reason(h)},
             require=lambda h, c: not _inferred_mtls(h, c)),
    FlagRule("response_flags.NoHealthyUpstream",
             "UH: no endpoints or every host ejected by outlier detection",
             "MS3004", "source", lambda c: has_flag(c[FLAGS], "UH"),
             lambda h, c: {"cause": "no endpoints, or all hosts ejected"}),
    FlagRule("response_flags.NoRoute", "NR on the client side: no route matched the request (a listener that refused "
             "a connection before any request, e.g. plaintext to an mTLS-only port, is evidence for MS3001 instead)",
             "MS3005", "source", lambda c: has_flag(c[FLAGS], "NR") & ~listener_refusal(c)),
    FlagRule("response_flags.NoCluster", "NC: the matched route points to a cluster that does not exist",
             "MS3006", "source", lambda c: has_flag(c[FLAGS], "NC")),
    FlagRule("response_flags.CircuitBreakerOpen", "UO: requests rejected by circuit-breaker limits",
             "MS3007", "source", lambda c: has_flag(c[FLAGS], "UO")),
    FlagRule("response_flags.UpstreamTimeout", "UT: the route timeout fired before the upstream answered",
             "MS3008", "source", lambda c: has_flag(c[FLAGS], "UT")),
    FlagRule("response_flags.DownstreamDisconnect", "DC on the server side: the caller hung up first",
             "MS3009", "destination", lambda c: has_flag(c[FLAGS], "DC")),
    FlagRule("response_flags.FaultAbortInjected", "FI: requests aborted by a VirtualService fault",
             "MS3010", "source", lambda c: has_flag(c[FLAGS], "FI")),
    FlagRule("response_flags.FaultDelayInjected", "DI: requests delayed by a VirtualService fault",
             "MS3011", "source", lambda c: has_flag(c[FLAGS], "DI")),
    FlagRule("response_flags.UpstreamReset", "UC (other than at connect), UR, LR: connections reset mid-request",
             "MS3015", "source", _uc_other, _first_flag(("UC", "UR", "LR")),
             require=lambda h, c: not _inferred_mtls(h, c)),
]
