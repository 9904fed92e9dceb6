"""Reading SLO files: meshscope, OpenSLO and Pyrra objects through the config model, Sloth documents directly.

A bad SLO is a problem naming its file, line and field; the other SLOs of the
same file still load. Documents of other kinds are skipped, so an SLO file may
sit in the same folder as the mesh's Istio config.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from diagnose.slo import asm, importers
from diagnose.slo.spec import SLO, SpecError, is_slo_object, problem_for, slo_from_object
from mesh.config import ConfigObject, LoadProblem, load_text
from mesh.config.loader import NOT_AN_OBJECT, expand_paths


@dataclass
class SloLoad:
    slos: list[SLO] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)


def slos_from_objects(objects: Iterable[ConfigObject]) -> SloLoad:
    """SLOs among loaded config objects (meshscope, OpenSLO, Pyrra kinds); others are ignored."""
    out = SloLoad()
    for obj in objects:
        try:
            if is_slo_object(obj):
                out.slos.append(slo_from_object(obj))
            elif obj.api_version.startswith("openslo/") and obj.kind == "SLO":
                out.slos.append(importers.from_openslo(obj.name, obj.spec, _src(obj)))
            elif obj.api_version.startswith("pyrra.dev/") and obj.kind == "ServiceLevelObjective":
                out.slos.append(importers.from_pyrra(obj.name, obj.namespace, obj.spec, _src(obj)))
            elif asm.is_asm_slo(obj):  # Alibaba Cloud ASM: one SLO per spec.slos entry, bad entries named
                slos, errors = asm.from_object(obj)
                out.slos.extend(slos)
                out.problems.extend(problem_for(obj, e) for e in errors)
        except SpecError as err:
            out.problems.append(problem_for(obj, err))
    return out


def is_slo_kind(obj: ConfigObject) -> bool:
    return is_slo_object(obj) or (obj.api_version.startswith("openslo/") and obj.kind == "SLO") or \
        (obj.api_version.startswith("pyrra.dev/") and obj.kind == "ServiceLevelObjective") or asm.is_asm_slo(obj)


def _src(obj: ConfigObject) -> str | None:
    return str(obj.source) if obj.source else None


def load_slo_text(text: str, filename: str = "<text>") -> SloLoad:
    """SLOs of one YAML stream (any mix of meshscope, Sloth, OpenSLO and Pyrra documents)."""
    loaded = load_text(text, filename)
    out = slos_from_objects(loaded.objects)
    sloth_lines: set[int] = set()
    try:
        nodes = list(yaml.compose_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    except yaml.YAMLError:
        nodes = []  # the config loader already reported the syntax error
    for node in nodes:
        if not isinstance(node, yaml.MappingNode):
            continue
        doc = yaml.safe_load(yaml.serialize(node))
        if isinstance(doc, dict) and doc.get("version") == "prometheus/v1":
            line = node.start_mark.line + 1
            sloth_lines.add(line)
            slos, problems = importers.from_sloth(doc, f"{filename}:{line}")
            out.slos.extend(slos)
            out.problems.extend(LoadProblem(file=filename, line=line, message=f"{f}: {m}", kind="Sloth",
                                            name=str(doc.get("service")), field=f) for f, m in problems)
    # an SLO file holds only SLOs: a document the config loader skipped as no object (not Sloth's) is a problem here
    out.problems.extend(p for p in [*loaded.problems, *loaded.skipped]
                        if p.line not in sloth_lines or (p.field != "kind" and p.reason != NOT_AN_OBJECT))
    return out


def load_slos(paths: Iterable[str | Path]) -> SloLoad:
    """SLOs of every YAML file in the given files and folders."""
    files, problems = expand_paths(paths)
    out = SloLoad(problems=list(problems))
    for f in files:
        try:
            text = Path(f).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            out.problems.append(LoadProblem(str(f), 0, f"cannot read file: {exc}"))
            continue
        part = load_slo_text(text, str(f))
        out.slos.extend(part.slos)
        out.problems.extend(part.problems)
    return out
