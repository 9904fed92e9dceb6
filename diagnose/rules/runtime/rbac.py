"""RBAC denials: 403 answers whose response-code details name an authorization policy.

Envoy's RBAC filter writes `rbac_access_denied_matched_policy[ns[NS]-policy[NAME]-rule[N]]`
for a DENY match and `...[none]` when no ALLOW policy matched; only the server
side sees it (the client logs a plain `403 via_upstream`), so this rule reads
destination-side rows and takes the policy's identity from the details text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from diagnose.findings import Finding
from diagnose.catalog import make
from diagnose.rules.runtime.evidence import hurt_by_service
from diagnose.rules.runtime.traffic import CODE, DETAILS, DST, SIDE, RuntimeContext

POLICY = re.compile(r"ns\[([^\]]*)\]-policy\[([^\]]*)\]-rule\[(\d+)\]")


def denied_by(details: str) -> tuple[str | None, str | None, int | None]:
    """(namespace, policy name, rule index) from RBAC details; all None for `[none]` (no ALLOW matched)."""
    m = POLICY.search(details)
    return (m.group(1), m.group(2), int(m.group(3))) if m else (None, None, None)


@dataclass(frozen=True)
class RBACDenied:
    name: str = "rbac.RBACDenied"
    description: str = "403 with rbac_access_denied details: an AuthorizationPolicy denies the caller"
    codes: tuple[str, ...] = ("MS3012",)

    def analyze(self, ctx: RuntimeContext) -> list[Finding]:
        c = ctx.calls
        if c.empty:
            return []
        rows = c[(c[CODE] == 403) & c[DETAILS].str.startswith("rbac_access_denied")]
        out = []
        for hurt in hurt_by_service(ctx, rows):
            policies = []
            for details in hurt.details:
                ns, name, rule = denied_by(details)
                policies.append({"namespace": ns, "name": name, "rule": rule} if name else
                                {"namespace": None, "name": None, "rule": None, "no_allow_match": True})
            named = [p for p in policies if p["name"]]
            label = (", ".join(f"AuthorizationPolicy {p['namespace']}/{p['name']} rule {p['rule']}" for p in named)
                     or "no ALLOW policy matches the caller")
            # the callers' sidecars log the same denials as a plain 403: they name the calling workloads
            client = c[(c[SIDE] == "source") & (c[CODE] == 403) & (c[DST] == hurt.destination)]
            callers = hurt_by_service(ctx, client)
            args = hurt.args()
            if callers:
                args["source"] = callers[0].sources
            f = make("MS3012", resource=hurt.service_ref(), **args, policy=label)
            f.evidence = hurt.evidence(rule=self.name, policies=policies,
                                       client_edges=callers[0].edges if callers else [])
            f.impact = hurt.impact()
            out.append(f)
        return out


RULES = [RBACDenied()]
