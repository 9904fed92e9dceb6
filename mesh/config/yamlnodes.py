"""YAML documents with the line of every field.

PyYAML's C parser composes node trees that carry start marks; we turn those
nodes into plain Python data ourselves and record, on the way, the 1-based
line of each YAML path (``spec/http[0]/route[1]/destination``). That is one
walk instead of two (compose, then construct), and keeps libyaml's speed for
the scanning and parsing, which is most of the work.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from mesh.config import limits

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PLAIN = "?plain"  # tag for plain scalars: resolved in the builder, only when the first character can matter


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Composes nodes without per-node resolver work: no path resolvers exist, and plain scalars are
    resolved by `_Builder.scalar` (most are strings whose first character rules out every other type)."""

    def descend_resolver(self, current_node, current_index):  # noqa: D401 - hooks called by the composer
        return None

    def ascend_resolver(self):
        return None

    def resolve(self, kind, value, implicit):
        if kind is yaml.ScalarNode:
            return _PLAIN if implicit[0] else _STR
        return _SEQ if kind is yaml.SequenceNode else _MAP


_IMPLICIT = yaml.SafeLoader.yaml_implicit_resolvers
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_FLOAT = "tag:yaml.org,2002:float"
_MERGE = "tag:yaml.org,2002:merge"
# YAML 1.1 types Kubernetes' YAML reader (sigs.k8s.io/yaml over go-yaml v2) keeps as the string written: a plain
# timestamp-looking scalar (`released: 2024-05-01`, a valid label value) and a lone `=` (PyYAML's "value" type,
# which it cannot even construct: an enum of operators in a CRD, `- =`, made the whole document invalid YAML).
_AS_WRITTEN = frozenset({"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value"})
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_DOC_SEPARATOR = re.compile(r"^---(?:\s|$)", re.MULTILINE)


@dataclass
class YamlDocument:
    """One document of a YAML stream: its data, where it starts, and the line of every path."""

    data: Any
    line: int
    lines: dict[str, int] = field(default_factory=dict)
    #: (path, line, first line) of mapping keys written twice; YAML keeps the last value.
    duplicates: list[tuple[str, int, int]] = field(default_factory=list)


class YamlSyntaxError(ValueError):
    """A document that is not valid YAML; `line` is 1-based (0 when unknown)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


class _Builder:
    """Turns composed nodes into data, recording path -> line as it goes."""

    def __init__(self, line_offset: int = 0) -> None:
        self.off = line_offset + 1
        self.duplicates: list[tuple[str, int, int]] = []
        self._fallback = yaml.SafeLoader("")  # only for rare tags (timestamps, binary, sets)
        self.max_depth = limits.max_depth()
        self.budget = self.left = limits.node_budget(0)  # set per stream by _compose_all

    def build(self, node: yaml.Node, path: str, lines: dict[str, int], depth: int = 0) -> Any:
        # Hot path (every node of every document): scalars are handled inline, without a call.
        cls = node.__class__
        if cls is yaml.ScalarNode:
            return self.scalar(node)
        if depth >= self.max_depth:
            raise limits.InputLimitError(limits.depth_message(self.max_depth), node.start_mark.line + self.off)
        self.left -= len(node.value)  # aliases re-walk shared nodes: count what is built, not what is written
        if self.left < 0:
            raise limits.InputLimitError(limits.expansion_message(self.budget), node.start_mark.line + self.off)
        off = self.off
        if cls is yaml.SequenceNode:
            out: list[Any] = []
            append = out.append
            for i, child in enumerate(node.value):
                p = f"{path}[{i}]"
                lines[p] = child.start_mark.line + off
                if child.__class__ is yaml.ScalarNode:
                    tag = child.tag
                    if tag == _STR or (tag == _PLAIN and child.value[:1] not in _IMPLICIT):
                        append(child.value)
                        continue
                    append(self.scalar(child))
                else:
                    append(self.build(child, p, lines, depth + 1))
            return out
        result: dict[Any, Any] = {}
        for knode, vnode in node.value:
            if knode.__class__ is yaml.ScalarNode:
                ktag = knode.tag
                if ktag == _STR or (ktag == _PLAIN and knode.value[:1] not in _IMPLICIT):
                    key = knode.value
                elif ktag == _MERGE or (ktag == _PLAIN and knode.value == "<<"):
                    merged = self.build(vnode, path, {}, depth + 1)
                    for m in merged if isinstance(merged, list) else [merged]:
                        if isinstance(m, dict):
                            for k, v in m.items():
                                result.setdefault(k, v)
                    continue
                else:
                    key = self.scalar(knode)
            else:
                key = self.build(knode, path, {}, depth + 1)
                if isinstance(key, (list, dict)):
                    raise YamlSyntaxError("a mapping key must be a scalar", knode.start_mark.line + off)
            p = f"{path}/{key}" if path else str(key)
            if key in result and p in lines:
                self.duplicates.append((p, knode.start_mark.line + off, lines[p]))
            lines[p] = knode.start_mark.line + off
            if vnode.__class__ is yaml.ScalarNode:
                vtag = vnode.tag
                if vtag == _STR or (vtag == _PLAIN and vnode.value[:1] not in _IMPLICIT):
                    result[key] = vnode.value
                    continue
                result[key] = self.scalar(vnode)
            else:
                result[key] = self.build(vnode, p, lines, depth + 1)
        return result

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag, value = node.tag, node.value
        if tag == _PLAIN:
            tag = _STR
            for candidate, regexp in _IMPLICIT.get(value[:1], ()):
                if regexp.match(value):
                    tag = candidate
                    break
            node.tag = tag
        if tag == _STR:
            return value
        if tag in _AS_WRITTEN and not node.style:  # plain (libyaml gives "", PyYAML None)
            return value
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return value.lower() in ("true", "yes", "on")
        if tag == _INT:
            return self._fallback.construct_yaml_int(node)
        if tag == _FLOAT:
            return self._fallback.construct_yaml_float(node)
        try:
            return self._fallback.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise YamlSyntaxError(str(exc).splitlines()[0], node.start_mark.line + self.off) from exc


def _error_line(exc: BaseException) -> int:
    mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
    return mark.line + 1 if mark is not None else getattr(exc, "line", 0)


def _error_message(exc: BaseException) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        parts = [p for p in (exc.context, exc.problem) if p]
        return "; ".join(parts) or "invalid YAML"
    return str(exc) or type(exc).__name__


def _explain_tabs(message: str, text: str, line: int) -> str:
    """Say so when a tab is the cause: libyaml only reports "a character that cannot start any token"."""
    lines = text.splitlines()
    if not 0 < line <= len(lines):
        return message
    src = lines[line - 1]
    indent = src[:len(src) - len(src.lstrip(" \t"))]
    if "\t" in indent:
        return f"a tab indents line {line}; YAML allows only spaces for indentation ({message})"
    if "\t" in src and "cannot start any token" in message:
        return f"a tab on line {line} where YAML expects a value or spaces ({message})"
    return message


_PLACEHOLDER = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")


def _explain_placeholder(message: str, text: str, line: int) -> str:
    """Name an unsubstituted `${VAR}` on the line YAML stopped at: files meant for envsubst or Flux's
    substitution are no YAML until it runs when the placeholder stands for a list item or a block."""
    lines = text.splitlines()
    if not 0 < line <= len(lines):
        return message
    m = _PLACEHOLDER.search(lines[line - 1])
    if m is None:
        return message
    return f"line {line} holds {m.group()}, a placeholder to substitute (envsubst) before this is YAML ({message})"


def _compose_all(text: str, line_offset: int) -> Iterator[YamlDocument]:
    loader = _Loader(text)
    builder = _Builder(line_offset)
    builder.budget = builder.left = limits.node_budget(len(text))
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            lines: dict[str, int] = {}
            builder.duplicates = []
            data = builder.build(node, "", lines)
            yield YamlDocument(data, node.start_mark.line + line_offset + 1, lines, builder.duplicates)
    finally:
        loader.dispose()


def parse_documents(text: str) -> tuple[list[YamlDocument], list[YamlSyntaxError | limits.InputLimitError]]:
    """Every document of a YAML stream, plus one error per document that is not YAML.

    A syntax error does not lose the rest of the file: the stream is re-read one
    document at a time (split at ``---`` lines), so only the broken document is
    dropped.
    """
    try:
        return list(_compose_all(text, 0)), []
    except (yaml.YAMLError, YamlSyntaxError, RecursionError, ValueError):
        pass
    docs: list[YamlDocument] = []
    errors: list[YamlSyntaxError | limits.InputLimitError] = []
    starts = [0] + [m.start() for m in _DOC_SEPARATOR.finditer(text) if m.start() > 0]
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        chunk = text[start:end]
        offset = text.count("\n", 0, start)
        try:
            docs.extend(_compose_all(chunk, offset))
        except (yaml.YAMLError, YamlSyntaxError, RecursionError, ValueError) as exc:
            if isinstance(exc, limits.InputLimitError):
                errors.append(exc)  # keeps its reason: an input over a limit, not a syntax error
                continue
            line = _error_line(exc)
            line = line + offset if isinstance(exc, yaml.YAMLError) else line
            message = _explain_tabs(_error_message(exc), text, line)
            errors.append(YamlSyntaxError(_explain_placeholder(message, text, line), line))
    return docs, errors
