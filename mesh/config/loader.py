"""Files and folders of YAML in, ConfigObjects (with file and line) and load problems out.

A bad document never stops the load: it becomes a `LoadProblem` naming the
file, line and field, and every other document is still loaded. Whether a kind
is one meshscope analyzes is not decided here (unknown kinds pass through).
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesh.config import limits
from mesh.config.kinds import (BUILD_TOOL_GROUPS, EXCLUDED_NAMESPACES, GATEWAY_API, ISTIO_GROUPS, group_of,
                               is_tool_config)
from mesh.config.model import ConfigObject, Source
from mesh.config.namespaces import DEFAULT_NAMESPACE, effective_namespace
from mesh.config.yamlnodes import YamlDocument, parse_documents

YAML_SUFFIXES = (".yaml", ".yml", ".json")

# LoadProblem.reason values, so the diagnoser can give each its own code.
UNREADABLE = "unreadable"
NOT_YAML = "not-yaml"
NOT_MAPPING = "not-mapping"
NO_KIND = "no-kind"
NO_API_VERSION = "no-api-version"
NO_NAME = "no-name"
BAD_FIELD = "bad-field"
# LoadResult.skipped's reason: a document or file that is not a Kubernetes object (a kustomization, its side files,
# a values or params file kept beside the manifests). Info, not a problem: `apply` and the control API go on.
NOT_AN_OBJECT = "not-an-object"
# A Go/Helm template whose actions are still in it (`{{ .Values.x }}`): its objects exist only once rendered. One
# problem per file, instead of a syntax error per document that the first unquoted `{{` breaks.
UNRENDERED_TEMPLATE = "unrendered-template"

# A template action where YAML would read a value or a key, not inside a quoted string: at a line's start (after
# indentation and a list dash) or right after `key: `. Unquoted, `{{` opens a flow mapping YAML cannot close.
_UNQUOTED_ACTION = re.compile(r"^[ \t]*(?:-[ \t]+)?(?:[^\s\"'#{][^:#\"']*:[ \t]+)?\{\{", re.MULTILINE)
# An action reading one of Helm's built-in objects (the template language's own names, not a chart's).
_HELM_ACTION = re.compile(r"\{\{-?[^}]*\.(?:Values|Release|Chart|Capabilities|Template|Files)\b")
# Groups whose objects never carry template actions once rendered (Istio's config kinds, the Gateway API).
MESH_CONFIG_GROUPS = ISTIO_GROUPS | {GATEWAY_API}
# Helm chart metadata (Chart.yaml): apiVersion v1/v2 of the chart format, a name and a version, no kind or metadata.
_CHART_API_VERSIONS = ("v1", "v2")


@dataclass
class LoadProblem:
    """Why (part of) a document could not be loaded as written."""

    file: str
    line: int
    message: str
    kind: str | None = None
    name: str | None = None
    field: str | None = None
    reason: str = BAD_FIELD
    namespace: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        what = f" ({self.kind} {self.name})" if self.kind and self.name else ""
        return f"{where}{what}: {self.message}"


@dataclass
class LoadResult:
    objects: list[ConfigObject] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    skipped: list[LoadProblem] = field(default_factory=list)  # not Kubernetes objects (NOT_AN_OBJECT), said once

    def extend(self, other: LoadResult) -> None:
        self.objects.extend(other.objects)
        self.problems.extend(other.problems)
        self.files.extend(other.files)
        self.skipped.extend(other.skipped)


def expand_paths(paths: Iterable[str | Path]) -> tuple[list[Path], list[LoadProblem]]:
    """Files named directly, plus every YAML/JSON file under named folders, in load order.

    Load order is kubectl's (`kubectl apply -f a -f dir/`), which decides which of two
    definitions of one object wins (the last, see `mesh.config.duplicates`): paths in
    the order given; inside a folder, recursively, each directory's entries in lexical
    order (Path ordering compares part by part, as Go's filepath.Walk visits). A file
    reached twice (named, and again through its folder) is read once, where first reached.
    """
    files: list[Path] = []
    problems: list[LoadProblem] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = []
            for root, dirs, names in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found.extend(Path(root) / n for n in names if n.endswith(YAML_SUFFIXES) and not n.startswith("."))
            candidates = sorted(found)
        elif p.exists():
            candidates = [p]
        else:
            problems.append(LoadProblem(str(p), 0, "no such file or directory", reason=UNREADABLE))
            continue
        for f in candidates:
            real = f.resolve()
            if real not in seen:
                seen.add(real)
                files.append(f)
    return files, problems


def load_paths(paths: Iterable[str | Path], exclude_namespaces: frozenset[str] = EXCLUDED_NAMESPACES,
               default_namespace: str | None = DEFAULT_NAMESPACE) -> LoadResult:
    """Load every document of the given files and folders.

    Objects without `metadata.namespace` get `default_namespace` (kubectl's `-n`; see
    `mesh.config.namespaces`); None leaves them without one.
    """
    files, problems = expand_paths(paths)
    named = {Path(p) for p in paths}
    result = LoadResult(problems=problems)
    side = kustomize_side_files(files)
    for f in files:
        if (why := side.get(f.resolve())) is not None:
            result.files.append(str(f))
            result.skipped.append(LoadProblem(str(f), 0, f"not a Kubernetes object ({why}), skipped",
                                              reason=NOT_AN_OBJECT))
            continue
        try:
            too_big = limits.size_problem(f.stat().st_size, "file")  # before reading: never load a huge file
            if too_big:
                result.problems.append(LoadProblem(str(f), 0, too_big, reason=limits.OVER_LIMIT))
                continue
            raw = f.read_bytes()
        except OSError as exc:
            result.problems.append(LoadProblem(str(f), 0, f"cannot read file: {exc.strerror or exc}", reason=UNREADABLE))
            continue
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            result.problems.append(LoadProblem(str(f), line, "not UTF-8 text (is this a YAML file?)", reason=NOT_YAML))
            continue
        if f.suffix == ".json" and f not in named and not _looks_like_object(text):
            continue  # a JSON file found in a folder walk that is not a Kubernetes object (test data, manifests)
        result.extend(load_text(text, str(f), exclude_namespaces, default_namespace))
    return result


def _looks_like_object(text: str) -> bool:
    """Whether JSON text holds a Kubernetes object, or must be reported: nested too deep to read, or unparsable
    while naming a kind or apiVersion (a broken object).

    Read as kubectl reads JSON, a stream of values one after another (JSON Lines is one too): test data in lines is
    no object. Unparsable text that never says `kind` or `apiVersion` (a database import such as bookinfo's
    `{rating: 5}` lines) cannot be a broken object either.
    """
    decoder = json.JSONDecoder()
    values, pos, end = [], 0, len(text)
    try:
        while True:
            while pos < end and text[pos].isspace():
                pos += 1
            if pos == end:
                break
            value, pos = decoder.raw_decode(text, pos)
            values.append(value)
    except RecursionError:
        return True  # the loader refuses it over its depth limit
    except ValueError:
        return "kind" in text or "apiVersion" in text
    return any(isinstance(v, dict) and ("kind" in v or "apiVersion" in v) for v in values)


def load_text(text: str, filename: str = "<text>", exclude_namespaces: frozenset[str] = EXCLUDED_NAMESPACES,
              default_namespace: str | None = DEFAULT_NAMESPACE) -> LoadResult:
    """Load every document of one YAML stream; `filename` is what findings will name."""
    result = LoadResult(files=[filename])
    too_big = limits.size_problem(len(text), "input")
    if too_big:
        result.problems.append(LoadProblem(filename, 0, too_big, reason=limits.OVER_LIMIT))
        return result
    text = _DOCUMENT_BOM.sub(r"\1", text)
    docs, errors = parse_documents(text)
    template_line = _unrendered_template_line(text, docs, bool(errors))
    if template_line:
        result.problems.append(LoadProblem(filename, template_line, "an unrendered Helm/Go template ({{ ... }} at "
                                           f"line {template_line}): not analyzed; render it (helm template) and "
                                           "analyze the output", reason=UNRENDERED_TEMPLATE))
        return result
    for err in errors:
        if isinstance(err, limits.InputLimitError):
            result.problems.append(LoadProblem(filename, err.line, str(err), reason=err.reason))
            continue
        result.problems.append(LoadProblem(filename, err.line, f"not valid YAML: {err}", reason=NOT_YAML))
    for doc in docs:
        if doc.data is None:
            continue
        _add_document(doc, filename, result, exclude_namespaces, default_namespace)
    return result


# A byte-order mark opening any document, not only the stream (`cat a.yaml b.yaml` where b.yaml was saved with
# one): kubectl splits the stream at `---` and its YAML parser drops a BOM at the start of each document.
_DOCUMENT_BOM = re.compile(r"(?m)(\A|^---[^\n]*\n)\ufeff|^\ufeff(?=---)")


def _unrendered_template_line(text: str, docs: list[YamlDocument], broken: bool) -> int:
    """Line of the first template action when the file is a template still to render, else 0.

    Decided by what the actions did to the YAML: an unquoted action where a value or key goes breaks the parse
    (`name: {{ .Release.Name }}`, `{{- if .Values.x }}` lines); a quoted one parses but leaves the object's
    identity a template (`name: "{{ .Release.Name }}"`), or an Istio or Gateway API object's spec reading Helm's
    built-in objects (`host: "{{ .Release.Name }}.svc"`), which no rendered mesh config holds. Other actions inside
    string values of a rendered object (Prometheus alert texts, Argo parameters, the injector's own templates in a
    ConfigMap) are content: left alone.
    """
    if "{{" not in text:
        return 0
    if broken:
        m = _UNQUOTED_ACTION.search(text)
        if m:
            return text.count("\n", 0, m.end()) + 1
    for doc in docs:
        data = doc.data
        if not isinstance(data, dict):
            continue
        meta = data.get("metadata")
        ident = {"apiVersion": data.get("apiVersion"), "kind": data.get("kind")}
        if isinstance(meta, dict):
            ident.update({"metadata/name": meta.get("name"), "metadata/namespace": meta.get("namespace")})
        for path, value in ident.items():
            if isinstance(value, str) and "{{" in value and "}}" in value:
                return doc.lines.get(path, doc.line)
        api = data.get("apiVersion")
        if isinstance(api, str) and group_of(api) in MESH_CONFIG_GROUPS:
            found = _helm_value_path(data.get("spec"), "spec")
            if found:
                return doc.lines.get(found, doc.line)
    return 0


def _helm_value_path(node: Any, path: str) -> str | None:
    """YAML path of the first string that reads one of Helm's built-in objects (`{{ .Values.x }}`), else None."""
    if isinstance(node, str):
        return path if _HELM_ACTION.search(node) else None
    if isinstance(node, dict):
        items: Iterable[tuple[str, Any]] = ((f"{path}/{k}", v) for k, v in node.items())
    elif isinstance(node, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(node))
    else:
        return None
    for sub, value in items:
        found = _helm_value_path(value, sub)
        if found:
            return found
    return None


def _is_chart_metadata(data: dict[str, Any]) -> bool:
    """Helm's Chart.yaml by its shape: the chart format's apiVersion, a name and a version, no kind or metadata."""
    return ("kind" not in data and "metadata" not in data and data.get("apiVersion") in _CHART_API_VERSIONS
            and isinstance(data.get("name"), str) and data.get("version") is not None)


def _add_document(doc: YamlDocument, filename: str, result: LoadResult, excluded: frozenset[str],
                  default_ns: str | None) -> None:
    data = doc.data
    if not isinstance(data, dict):
        result.problems.append(LoadProblem(filename, doc.line, f"document is a {_type_word(data)}, not an object "
                                           "with apiVersion/kind/metadata", reason=NOT_MAPPING))
        return
    if not any(k in data for k in ("apiVersion", "kind", "metadata")):
        # settings kept beside the manifests (kustomize params and configurations, Helm values): nothing of an
        # object's shape. A document with any of the three is meant as an object and its gaps are reported.
        result.skipped.append(LoadProblem(filename, doc.line, "not a Kubernetes object (no apiVersion, kind or "
                                          "metadata), skipped", reason=NOT_AN_OBJECT))
        return
    if _is_chart_metadata(data):
        result.skipped.append(LoadProblem(filename, doc.line, "not a Kubernetes object (Helm chart metadata: "
                                          "apiVersion, name and version, no kind), skipped", reason=NOT_AN_OBJECT))
        return
    kind = data.get("kind")
    if isinstance(kind, str) and (kind == "List" or kind.endswith("List")) and "items" in data:
        items = data.get("items")
        if not isinstance(items, list):
            result.problems.append(LoadProblem(filename, doc.lines.get("items", doc.line),
                                               f"{kind}.items must be a list", kind=kind, field="items"))
            return
        # API list responses (ServiceList) leave kind/apiVersion off their items.
        item_kind = kind[:-4] if kind != "List" else None
        for i, item in enumerate(items):
            prefix = f"items[{i}]"
            if isinstance(item, dict) and item_kind:
                item.setdefault("kind", item_kind)
                item.setdefault("apiVersion", data.get("apiVersion"))
            cut = len(prefix) + 1
            sub = {k[cut:]: v for k, v in doc.lines.items() if k.startswith(prefix + "/")}
            dups = [(p[cut:], line, first) for p, line, first in doc.duplicates if p.startswith(prefix + "/")]
            nested = isinstance(item, dict) and isinstance(item.get("kind"), str) and item["kind"].endswith("List")
            # a List inside a List is flattened, as kubectl's resource builder flattens it
            (_add_document if nested else _add_object)(YamlDocument(item, doc.lines.get(prefix, doc.line), sub, dups),
                                                       filename, result, excluded, default_ns)
        return
    _add_object(doc, filename, result, excluded, default_ns)


KUSTOMIZATION_FILE_NAMES = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})


def _is_kustomization_file(filename: str) -> bool:
    """A file kustomize builds from by its name, whatever its content declares."""
    return filename.replace("\\", "/").rsplit("/", 1)[-1] in KUSTOMIZATION_FILE_NAMES


# kustomization fields naming files kustomize reads itself (generator sources, patches, transformer configs):
# (field, key of each entry holding the path; None: the entry is the path)
_SIDE_FILE_FIELDS = (("configMapGenerator", "files"), ("configMapGenerator", "envs"), ("configMapGenerator", "env"),
                     ("secretGenerator", "files"), ("secretGenerator", "envs"), ("secretGenerator", "env"),
                     ("patches", "path"), ("patchesJson6902", "path"), ("patchesStrategicMerge", None),
                     ("configurations", None), ("generators", None), ("transformers", None), ("validators", None),
                     ("replacements", "path"), ("helmCharts", "valuesFile"), ("openapi", "path"))


def kustomize_side_files(files: Iterable[Path]) -> dict[Path, str]:
    """Files the kustomizations among `files` read as patches, generator inputs or configuration (resolved path ->
    why it is not an object): a strategic-merge patch looks like an object but holds only the fields it changes,
    and a JSON patch or a params file is no object at all. `resources` are objects and stay."""
    side: dict[Path, str] = {}
    for k in files:
        by_name = _is_kustomization_file(str(k))
        if not by_name and k.suffix not in (".yaml", ".yml"):
            continue
        try:
            if limits.size_problem(k.stat().st_size, "file"):
                continue
            raw = k.read_bytes()
            if not by_name and _KUSTOMIZE_GROUP not in raw:
                continue  # most files: no need to parse them twice
            docs, _ = parse_documents(raw.decode("utf-8-sig"))
        except (OSError, UnicodeDecodeError):
            continue  # reported when the file itself is loaded
        for doc in docs:
            # a kustomization kept under another name (kustomization-prod.yaml, copied into place by a
            # build script) declares itself by its apiVersion; its patches are no objects either
            if isinstance(doc.data, dict) and (by_name or _declares_kustomization(doc.data)):
                for name, entry in _side_file_refs(doc.data):
                    if isinstance(name, str) and name and "\n" not in name and "://" not in name:
                        side.setdefault((k.parent / name.rsplit("=", 1)[-1].strip()).resolve(), f"{entry} of {k}")
    return side


_KUSTOMIZE_GROUP = b"kustomize.config.k8s.io"


def _declares_kustomization(data: dict[str, Any]) -> bool:
    api = data.get("apiVersion")
    return isinstance(api, str) and group_of(api) == _KUSTOMIZE_GROUP.decode() and \
        data.get("kind") in ("Kustomization", "Component")


def _side_file_refs(kustomization: dict[str, Any]) -> Iterable[tuple[Any, str]]:
    for field_name, key in _SIDE_FILE_FIELDS:
        value = kustomization.get(field_name)
        for entry in value if isinstance(value, list) else [value] if value is not None else []:
            refs = entry.get(key) if key is not None and isinstance(entry, dict) else entry if key is None else None
            for ref in refs if isinstance(refs, list) else [refs]:
                yield ref, f"{field_name}.{key}" if key else field_name


def _add_object(doc: YamlDocument, filename: str, result: LoadResult, excluded: frozenset[str],
                default_ns: str | None) -> None:
    data, lines, line = doc.data, doc.lines, doc.line
    problems = result.problems
    if not isinstance(data, dict):
        problems.append(LoadProblem(filename, line, f"list item is a {_type_word(data)}, not an object",
                                    reason=NOT_MAPPING))
        return
    kind = data.get("kind")
    api = data.get("apiVersion")
    tool = isinstance(api, str) and group_of(api) in BUILD_TOOL_GROUPS  # a build or install tool's own file
    if tool or (api is None and kind in (None, "Kustomization", "Component") and _is_kustomization_file(filename)):
        # kustomize reads its file by name; apiVersion/kind are optional there (kubeflow omits them)
        what = f"{kind or 'config'} of {group_of(api)}" if tool else "kustomization file"
        result.skipped.append(LoadProblem(filename, line, f"not a Kubernetes object ({what}), skipped",
                                          reason=NOT_AN_OBJECT))
        return
    if is_tool_config(data):
        result.skipped.append(LoadProblem(filename, line, f"not a Kubernetes object ({kind} of {group_of(api)} "
                                          "without metadata: a tool's own configuration), skipped",
                                          reason=NOT_AN_OBJECT))
        return
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    name = str(name) if isinstance(name, (str, int)) and not isinstance(name, bool) else None
    if not isinstance(kind, str) or not kind:
        what = f"document {name!r}" if name else "document"
        msg = f"{what} has no kind" if kind is None else f"kind must be a string, got {_type_word(kind)}"
        problems.append(LoadProblem(filename, lines.get("kind", line), msg, name=name, field="kind", reason=NO_KIND))
        return
    if not isinstance(meta, dict):
        msg = "metadata is missing" if meta is None else f"metadata must be a mapping, got {_type_word(meta)}"
        problems.append(LoadProblem(filename, lines.get("metadata", line), msg, kind=kind, field="metadata",
                                    reason=NO_NAME))
        return
    if not name:
        problems.append(LoadProblem(filename, lines.get("metadata/name", lines.get("metadata", line)),
                                    "metadata.name is missing or not a string", kind=kind, field="metadata.name",
                                    reason=NO_NAME))
        return
    ns = meta.get("namespace")
    if ns is not None and not isinstance(ns, str):
        problems.append(LoadProblem(filename, lines.get("metadata/namespace", line),
                                    f"metadata.namespace must be a string, got {_type_word(ns)}", kind=kind, name=name,
                                    field="metadata.namespace"))
        ns = str(ns)
    written = ns
    ns = effective_namespace(kind, ns or None, default_ns)
    if ns in excluded:
        return
    if ns and not written:
        meta["namespace"] = ns  # the object as kubectl would store it, so re-serialized YAML keeps it
    api_version = data.get("apiVersion")
    if not isinstance(api_version, str) or not api_version:
        problems.append(LoadProblem(filename, lines.get("apiVersion", line), "apiVersion is missing or not a string",
                                    kind=kind, name=name, field="apiVersion", reason=NO_API_VERSION, namespace=ns))
        api_version = ""
    labels = _string_map(meta, "labels", filename, lines, line, kind, name, ns, problems)
    annotations = _string_map(meta, "annotations", filename, lines, line, kind, name, ns, problems)
    spec = data.get("spec")
    if spec is None:
        spec = {}
    elif not isinstance(spec, dict):
        problems.append(LoadProblem(filename, lines.get("spec", line), f"spec must be a mapping, got {_type_word(spec)}",
                                    kind=kind, name=name, field="spec", namespace=ns))
        spec = {}
    for path, dup_line, first in doc.duplicates:
        problems.append(LoadProblem(filename, dup_line, f"{path.replace('/', '.')} is written twice (first at line "
                                    f"{first}); the API server rejects this, YAML keeps the last value",
                                    kind=kind, name=name, field=path.replace("/", "."), namespace=ns))
    result.objects.append(ConfigObject(api_version=api_version, kind=kind, name=name, namespace=ns or None,
                                       spec=spec, labels=labels, annotations=annotations,
                                       source=Source(filename, line), lines=lines, raw=data))


def _string_map(meta: dict[str, Any], key: str, filename: str, lines: dict[str, int], line: int, kind: str,
                name: str, ns: str | None, problems: list[LoadProblem]) -> dict[str, str]:
    value = meta.get(key)
    if value is None:
        return {}
    path = f"metadata/{key}"
    if not isinstance(value, dict):
        problems.append(LoadProblem(filename, lines.get(path, line), f"metadata.{key} must be a mapping, got "
                                    f"{_type_word(value)}", kind=kind, name=name, field=f"metadata.{key}", namespace=ns))
        return {}
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(v, str):
            # Kubernetes rejects these (`version: 1` must be quoted); say so, but keep a usable value.
            problems.append(LoadProblem(filename, lines.get(f"{path}/{k}", line),
                                        f"metadata.{key}.{k} must be a string, got {_type_word(v)} (quote it)",
                                        kind=kind, name=name, field=f"metadata.{key}.{k}", namespace=ns))
            if v is None or isinstance(v, (dict, list)):
                continue
            v = str(v).lower() if isinstance(v, bool) else str(v)
        out[str(k)] = v
    return out


def _type_word(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "number",
            float: "number"}.get(type(value), type(value).__name__)
