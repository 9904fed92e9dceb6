"""From proposed YAML texts to an impact report and findings: what the API, the CLI and the UI share.

A proposal that does not load (bad YAML, missing fields, schema violations) gets its
problems as findings and no prediction: predicting on half a change would mislead.
"""
from __future__ import annotations

import re
from typing import Any

import pandas as pd

from diagnose.catalog import make
from diagnose.findings import Finding, ResourceRef
from diagnose.whatif import deletion
from diagnose.whatif.replay import AUTHZ, MTLS, NOT_JUDGED, ONTO_FAILING, SHIFT, UNREADY, ImpactReport, predict
from mesh.config.model import ConfigObject

DEFAULT_WINDOW_S = 3600.0
MAX_WINDOW_S = 30 * 86400.0
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")


def parse_window(value: Any) -> float:
    """"1h", "30m", "90s", "2d" or seconds -> seconds; ValueError naming the value otherwise."""
    m = _WINDOW.match(str(value))
    if not m:
        raise ValueError(f"window {value!r}: use seconds or a duration such as 30m, 1h, 1d")
    s = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}[m.group(2)]
    if not 1.0 <= s <= MAX_WINDOW_S:
        raise ValueError(f"window {value!r}: must be between 1s and {MAX_WINDOW_S / 86400:.0f}d")
    return s


def human_window(seconds: float) -> str:
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= n and seconds % n == 0:
            return f"{int(seconds // n)}{unit}"
    return f"{seconds:g}s"


def load_proposal(files: list[tuple[str, str]], default_namespace: str = "default") -> tuple[list[ConfigObject], list[str]]:
    """Objects of the proposed files and every load/schema problem (file:line: message)."""
    from mesh.config import last_wins, load_text
    from mesh.config.schema import problems as schema_problems

    objects: list[ConfigObject] = []
    problems: list[str] = []
    for name, text in files:
        got = load_text(text, name, exclude_namespaces=frozenset(), default_namespace=default_namespace)
        problems.extend(str(p) for p in got.problems)
        problems.extend(str(p) for p in schema_problems(got.objects))
        objects.extend(got.objects)
    if not objects and not problems:
        problems.append(f"{', '.join(n for n, _ in files) or 'the request'}: no objects in the proposed change")
    objects, _ = last_wins(objects)
    return objects, problems


def impact(live: list[ConfigObject], files: list[tuple[str, str]], rates: pd.DataFrame | None, window_s: float,
           default_namespace: str = "default", root_namespace: str = "istio-system",
           trust_domain: str = "cluster.local", requests: Any = None, delete: list[Any] | None = None) -> ImpactReport:
    """`requests`: the window's access-log rows (or a function reading them on first need), when the source
    has them: paths, methods and headers are then replayed per request. `delete`: live objects to delete
    (`Kind/namespace/name` strings or {kind, namespace, name}); files may then be empty."""
    objects, problems = load_proposal(files, default_namespace) if files or not delete else ([], [])
    gone, missing = [], []
    if delete:
        named = []
        for ref in delete:
            try:
                named.append(deletion.parse(ref, default_namespace))
            except ValueError as exc:
                missing.append(str(exc))
        got, unknown = deletion.resolve(live, named)
        gone, missing = got, missing + unknown
    if problems or missing:
        rep = ImpactReport(window_s=window_s, edges=0, total_rps=0.0, problems=problems + missing, predicted=False)
        rep.findings = [make("MS5005", None, evidence={"edge_key": p}, file=p.split(":", 1)[0], problem=p).to_dict()
                        for p in problems]
        rep.findings += [make("MS5009", None, evidence={"edge_key": p}, object=p.split(":", 1)[0],
                              problem=p.split(": ", 1)[-1]).to_dict() for p in missing]
        return rep
    return predict(live, objects, rates if rates is not None else pd.DataFrame(), window_s,
                   root_namespace=root_namespace, trust_domain=trust_domain, requests=requests, deleted=gone)


_CODES = {MTLS: "MS5001", AUTHZ: "MS5002", UNREADY: "MS5003", SHIFT: "MS5004", NOT_JUDGED: "MS5007",
          ONTO_FAILING: "MS5008"}


def findings_of(report: ImpactReport) -> list[Finding]:
    """One finding per affected edge (and the change's own config findings come with the report)."""
    out = []
    window = human_window(report.window_s)
    for i in report.impacts:
        ref = ResourceRef(**i.rule) if i.rule else None
        args: dict[str, Any] = {"source": i.source, "destination": i.destination, "window": window,
                                "rps": f"{i.broken_rps:.3g}", "reason": i.reason}
        if i.kind == MTLS:
            args["before"] = i.reason.rsplit("(was ", 1)[-1].rstrip(")")
        if i.kind == AUTHZ:
            args["certainty"] = "certain" if i.certain else "at risk: depends on request attributes neither metrics nor logs carry"
        f = make(_CODES[i.kind], ref, evidence={"edge_key": f"{i.source}->{i.destination}", "kind": i.kind,
                                                 "edge_rps": i.rps, "shift": i.shift, "certain": i.certain,
                                                 "share": i.share, "logged_requests": i.requests},
                 impact={"rps": i.broken_rps}, **args)
        if i.kind == AUTHZ and not i.certain:
            f.severity = "warning"
        if i.deleted:  # the object whose absence does it, whatever the template says of "the proposed change"
            f.message += f" [deleting {', '.join(i.deleted)}]"
            f.evidence["deleted"] = list(i.deleted)
        out.append(f)
    return out


def verdict(report: ImpactReport, max_broken_rps: float = 0.0) -> dict[str, Any]:
    """The report as JSON plus whether it breaks traffic beyond the bar (exit 1 in the CLI)."""
    d = report.to_dict()
    d["edge_findings"] = [f.to_dict() for f in findings_of(report)]
    d["max_broken_rps"] = max_broken_rps
    d["breaks"] = (not report.predicted) or report.broken_rps > max_broken_rps
    return d
