"""Health thresholds (Kiali's tolerance model): defaults, per namespace/kind/name rules, the annotation.

Kept apart from the health appender so the UI and diagnose can show or edit
the same thresholds the graph was colored with.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

HEALTHY, DEGRADED, FAILURE, NA = "Healthy", "Degraded", "Failure", "NA"
_RANK = {NA: 0, HEALTHY: 1, DEGRADED: 2, FAILURE: 3}
COLORS = {HEALTHY: "green", DEGRADED: "amber", FAILURE: "red", NA: "grey"}
ANNOTATION = "health.kiali.io/rate"


def worst(*statuses: str) -> str:
    return max(statuses, key=_RANK.__getitem__) if statuses else NA


@dataclass(frozen=True)
class Tolerance:
    """Error % of requests whose code matches `code` (X = any digit) at which a node degrades or fails."""

    code: str
    degraded: float
    failure: float
    protocol: str = "http"
    direction: str = ".*"

    def __post_init__(self) -> None:
        if self.degraded > self.failure:
            raise ValueError(f"tolerance {self.code}: degraded {self.degraded}% exceeds failure {self.failure}%")

    def matches_code(self, code: str) -> bool:
        pattern = self.code if self.code.startswith("^") else "^" + self.code.replace("X", r"\d").replace("x", r"\d") + "$"
        return re.match(pattern, code) is not None

    def matches(self, protocol: str, direction: str) -> bool:
        return re.fullmatch(self.protocol, protocol) is not None and re.fullmatch(self.direction, direction) is not None

    def status(self, error_pct: float) -> str:
        if error_pct <= 0:
            return HEALTHY
        if error_pct >= self.failure:
            return FAILURE
        if error_pct >= self.degraded:
            return DEGRADED
        return HEALTHY


DEFAULT_TOLERANCES: tuple[Tolerance, ...] = (
    Tolerance("5XX", degraded=0, failure=10, protocol="http"),
    Tolerance("4XX", degraded=10, failure=20, protocol="http"),
    Tolerance(r"^[1-9]$|^1[0-6]$", degraded=0, failure=10, protocol="grpc"),
    Tolerance(r"^-$", degraded=0, failure=10, protocol="http|grpc"),
)


@dataclass(frozen=True)
class HealthRule:
    """Tolerances for entities whose namespace, kind (app|service|workload) and name match (anchored regexes)."""

    tolerances: tuple[Tolerance, ...]
    namespace: str = ".*"
    kind: str = ".*"
    name: str = ".*"

    def selects(self, namespace: str, kind: str, name: str) -> bool:
        return all(re.fullmatch(p, v or "") is not None for p, v in
                   ((self.namespace, namespace), (self.kind, kind), (self.name, name)))


@dataclass(frozen=True)
class LatencyLimit:
    """A latency objective on a service (a latency SLO): `objective` % of its requests within `threshold_ms`.

    Judged per edge into the service on the window's latency at the objective's quantile, as the SLO's
    own burn rate would: over the threshold at that quantile means more slow requests than the budget
    allows (burning faster than 1x: Degraded); over it already at the quantile that leaves 10x the
    budget (burning >= 10x, near the 14.4x page threshold: Failure). `source` names it in the reason.
    """

    service: str
    namespace: str
    threshold_ms: float
    objective: float  # percent of requests within the threshold
    source: str = ""

    def quantiles(self) -> tuple[float, float]:
        """(degraded, failure) quantiles: the objective's, and the one at 10x the budget (not below the median)."""
        budget = max(0.0, 1.0 - self.objective / 100.0)
        q_deg = round(min(max(self.objective / 100.0, 0.5), 0.999), 6)
        return q_deg, round(min(q_deg, max(1.0 - 10.0 * budget, 0.5)), 6)


@dataclass
class HealthConfig:
    """First matching rule wins; Kiali's defaults always apply last. `latency`: latency objectives (SLOs)."""

    rules: list[HealthRule] = field(default_factory=list)
    latency: tuple[LatencyLimit, ...] = ()

    def tolerances_for(self, namespace: str, kind: str, name: str, annotation: str | None = None) -> tuple[Tolerance, ...]:
        if annotation:
            parsed = parse_annotation(annotation)
            if parsed:
                return parsed
        for rule in self.rules:
            if rule.selects(namespace, kind, name):
                return rule.tolerances
        return DEFAULT_TOLERANCES

    @classmethod
    def from_dict(cls, data: dict) -> HealthConfig:
        """`{"rate": [{"namespace": "...", "kind": "...", "name": "...", "tolerance": [{code, degraded, failure, protocol, direction}]}]}`."""
        rules = []
        for i, r in enumerate(data.get("rate") or []):
            try:
                tols = tuple(Tolerance(str(t["code"]), float(t["degraded"]), float(t["failure"]),
                                       str(t.get("protocol", "http")), str(t.get("direction", ".*")))
                             for t in r.get("tolerance") or [])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"health rate rule {i}: {exc}") from None
            rules.append(HealthRule(tols, str(r.get("namespace", ".*")), str(r.get("kind", ".*")), str(r.get("name", ".*"))))
        return cls(rules)


def parse_annotation(value: str) -> tuple[Tolerance, ...]:
    """`health.kiali.io/rate`: `code,degraded,failure,protocol,direction` joined by `;`. Invalid entries are ignored."""
    out = []
    for part in value.split(";"):
        fields = [f.strip() for f in part.split(",")]
        if len(fields) < 3:
            continue
        try:
            out.append(Tolerance(fields[0], float(fields[1]), float(fields[2]),
                                 fields[3] if len(fields) > 3 and fields[3] else "http",
                                 fields[4] if len(fields) > 4 and fields[4] else ".*"))
        except ValueError:
            continue
    return tuple(out)


def evaluate(codes: dict[str, float], protocol: str, direction: str, tolerances: tuple[Tolerance, ...]) -> tuple[str, str]:
    """(status, reason) for one protocol/direction's requests by response code."""
    total = sum(codes.values())
    if total <= 0:
        return NA, ""
    status, reason = HEALTHY, ""
    for tol in tolerances:
        if not tol.matches(protocol, direction):
            continue
        bad = sum(r for c, r in codes.items() if tol.matches_code(c))
        pct = 100.0 * bad / total
        s = tol.status(pct)
        if _RANK[s] > _RANK[status]:
            limit = tol.failure if s == FAILURE else tol.degraded
            status, reason = s, f"{direction} {protocol} {tol.code} {pct:.1f}% (limit {limit:g}%)"
    return status, reason
