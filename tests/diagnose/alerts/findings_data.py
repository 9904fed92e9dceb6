"""Findings shaped like the ones the diagnoser emits, for alert tests."""
from __future__ import annotations

from diagnose.findings import Finding, ResourceRef


def route_finding(name: str = "reviews", code: str = "MS1001", severity: str = "error") -> Finding:
    return Finding(
        code=code, severity=severity, category="route",
        message=f"VirtualService {name} routes to subset v9 which no DestinationRule defines <script>",
        resource=ResourceRef("VirtualService", name, "bookinfo", "spec/http[0]/route[0]", "vs.yaml:12"),
        remediation="Add subset v9 to DestinationRule reviews or route to an existing subset.",
    )


def slo_finding(service: str = "ratings") -> Finding:
    return Finding(
        code="MS4001", severity="error", category="slo",
        message=f"SLO {service}-availability burns its error budget at 14.6x (page)",
        resource=ResourceRef("Service", service, "bookinfo"),
        evidence={"burn_rates": {"1h": 14.6, "5m": 15.1}},
        impact={"rps": 3.2, "share": 0.12},
        remediation="Look at the failing edges into the service.",
    )


def runtime_finding(edge: str) -> Finding:
    return Finding(
        code="MS3001", severity="warning", category="runtime",
        message=f"Upstream connection failures (UF) on {edge}",
        resource=ResourceRef("Service", "details", "bookinfo"),
        evidence={"edge_key": edge, "flags": {"UF": 12}},
        impact={"rps": 0.4},
    )
