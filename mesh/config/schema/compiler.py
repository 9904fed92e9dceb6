"""OpenAPI v3 schemas (as Kubernetes CRDs write them) compiled once into checking closures.

A compiled check walks a value and appends an `Issue` (YAML path, problem class,
message) for every violation it finds, never stopping at the first: a user
fixing a file wants the whole list. Covered keywords: type, nullable, enum,
required, properties (unknown fields), additionalProperties, items, minimum/
maximum, int32/uint32/int64 formats, min/maxLength, pattern, min/maxItems,
min/maxProperties, oneOf/anyOf/allOf/not, x-kubernetes-int-or-string,
x-kubernetes-preserve-unknown-fields and x-kubernetes-validations (CEL, see cel.py).

As the API server does, a null value counts as absent (it prunes nulls of
fields that are not nullable), and CEL rules run only on values whose type is right.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mesh.config.schema.cel import CelUnsupported, compile_rule
from mesh.config.schema.durations import DurationError, parse_duration

# Problem classes (each has its own catalog code in the diagnoser).
TYPE = "type"
REQUIRED = "required"
UNKNOWN = "unknown"
ENUM = "enum"
RANGE = "range"
FORMAT = "format"
EXCLUSIVE = "exclusive"
DURATION = "duration"
DUPLICATE = "duplicate"
RULE = "rule"
SEMANTIC = "semantic"


@dataclass(frozen=True)
class Issue:
    """One violation: `path` is a YAML path (``spec/http[0]/timeout``), as the loader's line map keys it."""

    path: str
    problem: str
    message: str
    #: For a failed CRD rule: the rule's own message (what the API server says), to recognise it by.
    rule_message: str = ""

    @property
    def field(self) -> str:
        return self.path.replace("/", ".")


Check = Callable[[Any, str, list[Issue]], None]

_INT_RANGES = {"int32": (-2**31, 2**31 - 1), "uint32": (0, 2**32 - 1), "int64": (-2**63, 2**63 - 1),
               "uint64": (0, 2**64 - 1)}
_TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
               "object": "a mapping", "array": "a list"}

#: CEL rules the compiler cannot express (rule text -> why); a guard test keeps this empty for the bundled schema.
UNSUPPORTED_RULES: dict[str, str] = {}


def actual(value: Any) -> str:
    """What a value is, in the words a finding uses (`got a list`); shared with the Service shape rule."""
    if value is None:
        return "null"
    for t, word in ((bool, "true/false"), (str, "a string"), (int, "a number"), (float, "a number"),
                    (dict, "a mapping"), (list, "a list")):
        if isinstance(value, t):
            return word
    return type(value).__name__


def _describe(schema: dict[str, Any]) -> str:
    t = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        return "a number or a string"
    if t == "array":
        inner = (schema.get("items") or {}).get("type")
        if inner in ("string", "integer", "number", "boolean"):
            return f"a list of {_TYPE_WORDS[inner][2 if inner != 'integer' else 3:]}s"
        return "a list"
    return _TYPE_WORDS.get(t, "a value")


def _short(value: Any, limit: int = 80) -> str:
    """A value as the message quotes it: its repr, cut so one huge string cannot flood a report."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _dotted(path: str) -> str:
    return path.replace("/", ".")


def _exclusive_fields(branches: list[dict[str, Any]]) -> list[str] | None:
    """Fields of the CRD generator's "at most one of" pattern: oneOf [not anyOf [required a, ...], required a, ...]."""
    names: list[str] = []
    for b in branches:
        if "not" in b:
            continue
        req = b.get("required")
        if set(b) != {"required"} or not req or len(req) != 1:
            return None
        names.append(req[0])
    return names or None


def compile_schema(schema: dict[str, Any]) -> Check:
    """One check for `schema` and everything under it."""
    steps: list[Check] = []
    t = schema.get("type")
    int_or_string = bool(schema.get("x-kubernetes-int-or-string"))
    described = _describe(schema)

    # Hot path: one isinstance against the Python types the JSON type admits (bools are ints in Python).
    py_types: tuple[type, ...] | None = {"string": (str,), "integer": (int, float), "number": (int, float),
                                         "boolean": (bool,), "object": (dict,), "array": (list,)}.get(t or "")
    if int_or_string:
        py_types = (str, int, float)
    numeric = int_or_string or t in ("integer", "number")

    def type_ok(value: Any) -> bool:
        if py_types is None:
            return True
        if not isinstance(value, py_types):
            return False
        if numeric and not isinstance(value, str):
            if value.__class__ is bool:
                return False
            if t != "number" and value.__class__ is float:
                return value.is_integer()
        return True

    if "enum" in schema:
        allowed = schema["enum"]
        allowed_set = frozenset(a for a in allowed if not isinstance(a, (dict, list)))
        shown = ", ".join(str(a) for a in allowed)

        def enum(value: Any, path: str, out: list[Issue]) -> None:
            if isinstance(value, (dict, list)) or value not in allowed_set:
                hint = _suggest(value, [a for a in allowed if isinstance(a, str)], list_known=False) \
                    if isinstance(value, str) else ""
                out.append(Issue(path, ENUM, f"{_dotted(path)} must be one of {shown}; got {_short(value)}{hint}"))
        steps.append(enum)

    steps += _numeric_steps(schema)
    steps += _size_steps(schema)
    if t == "object" or "properties" in schema or "additionalProperties" in schema or "required" in schema:
        steps += _object_steps(schema)
    if "items" in schema:
        item_check = compile_schema(schema["items"])
        item_nullable = bool(schema["items"].get("nullable"))
        item_word = _describe(schema["items"])

        leaf = LEAF_CLASSES.get(item_check, frozenset())

        def items(value: Any, path: str, out: list[Issue]) -> None:
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if item.__class__ in leaf:  # hot path: a valid leaf item costs one set lookup
                        continue
                    if item is not None:
                        item_check(item, f"{path}[{i}]", out)
                    elif not item_nullable:  # the API server prunes null fields, not null list items
                        out.append(Issue(f"{path}[{i}]", TYPE, f"{_dotted(path)}[{i}] must be {item_word}, got null"))
        steps.append(items)
    steps += _list_type_steps(schema)
    steps += _combinator_steps(schema)
    steps += _rule_steps(schema)

    def check(value: Any, path: str, out: list[Issue]) -> None:
        if not type_ok(value):
            out.append(Issue(path, TYPE, f"{_dotted(path)} must be {described}, got {actual(value)}"))
            return
        for step in steps:
            step(value, path, out)

    if t == "object" and not int_or_string and len(steps) == 1:
        only = steps[0]

        def check_mapping(value: Any, path: str, out: list[Issue]) -> None:  # the commonest node, without calls
            if value.__class__ is dict:
                only(value, path, out)
            else:
                check(value, path, out)
        return check_mapping

    if not steps:  # a leaf: its parent checks valid values by class alone, without a call (see `fields`)
        LEAF_CLASSES[check] = frozenset({str} if t == "string" else {bool} if t == "boolean" else
                                        {int} if t == "integer" else {int, float} if t == "number" else
                                        {str, int} if int_or_string else {dict} if t == "object" else
                                        {list} if t == "array" else set())
    return check


#: Classes a leaf check accepts with nothing more to check (a valid value of them needs no call).
LEAF_CLASSES: dict[Check, frozenset[type]] = {}


def _numeric_steps(schema: dict[str, Any]) -> list[Check]:
    lo, hi = (None, None)
    if schema.get("type") == "integer":
        lo, hi = _INT_RANGES.get(schema.get("format", ""), (None, None))
    if "minimum" in schema:
        lo = schema["minimum"] if lo is None else max(lo, schema["minimum"])
    if "maximum" in schema:
        hi = schema["maximum"] if hi is None else min(hi, schema["maximum"])
    if lo is None and hi is None:
        return []

    def numeric(value: Any, path: str, out: list[Issue]) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            lo_s = "" if lo is None else f"{lo:g}" if isinstance(lo, float) else str(lo)
            hi_s = "" if hi is None else f"{hi:g}" if isinstance(hi, float) else str(hi)
            bounds = f"between {lo_s} and {hi_s}" if lo is not None and hi is not None else (
                f"at least {lo_s}" if lo is not None else f"at most {hi_s}")
            out.append(Issue(path, RANGE, f"{_dotted(path)} must be {bounds}, got {value}"))
    return [numeric]


def _size_steps(schema: dict[str, Any]) -> list[Check]:
    steps: list[Check] = []
    for kw_min, kw_max, types, unit in (("minLength", "maxLength", str, "characters"),
                                        ("minItems", "maxItems", list, "items"),
                                        ("minProperties", "maxProperties", dict, "entries")):
        lo, hi = schema.get(kw_min), schema.get(kw_max)
        if lo is None and hi is None:
            continue

        def size(value: Any, path: str, out: list[Issue], lo=lo, hi=hi, types=types, unit=unit) -> None:
            if not isinstance(value, types):
                return
            n = len(value)
            if lo is not None and n < lo:
                what = "must not be empty" if lo == 1 else f"must have at least {lo} {unit}"
                out.append(Issue(path, RANGE, f"{_dotted(path)} {what}, has {n}"))
            elif hi is not None and n > hi:
                out.append(Issue(path, RANGE, f"{_dotted(path)} must have at most {hi} {unit}, has {n}"))
        steps.append(size)
    if "pattern" in schema:
        rx = re.compile(schema["pattern"])
        pattern = schema["pattern"]

        def match(value: Any, path: str, out: list[Issue]) -> None:
            if isinstance(value, str) and not rx.search(value):
                out.append(Issue(path, FORMAT, f"{_dotted(path)} {_short(value)} does not match {pattern}"))
        steps.append(match)
    return steps


def _list_type_steps(schema: dict[str, Any]) -> list[Check]:
    """x-kubernetes-list-type: a `set` holds no value twice, a `map` no two items with the same keys."""
    list_type = schema.get("x-kubernetes-list-type")
    keys = tuple(schema.get("x-kubernetes-list-map-keys") or ())
    if list_type not in ("set", "map"):
        return []

    def unique(value: Any, path: str, out: list[Issue]) -> None:
        if not isinstance(value, list):
            return
        seen: dict[Any, int] = {}
        for i, item in enumerate(value):
            if list_type == "map":
                if not isinstance(item, dict):
                    continue
                key: Any = tuple(repr(item.get(k)) for k in keys)
                shown = ", ".join(f"{k}={item.get(k)!r}" for k in keys)
            else:
                key, shown = repr(item), repr(item)
            if key in seen:
                out.append(Issue(f"{path}[{i}]", DUPLICATE, f"{_dotted(path)}[{i}]: duplicate value {shown} "
                                                            f"(also {_dotted(path)}[{seen[key]}])"))
            else:
                seen[key] = i
    return [unique]


def _object_steps(schema: dict[str, Any]) -> list[Check]:
    steps: list[Check] = []
    props = {k: compile_schema(v) for k, v in (schema.get("properties") or {}).items()}
    extra = schema.get("additionalProperties")
    extra_check = compile_schema(extra) if isinstance(extra, dict) else None
    strict = "properties" in schema and extra_check is None and not schema.get("x-kubernetes-preserve-unknown-fields")
    known = sorted(props)
    required = list(schema.get("required") or [])

    leaf_props = {k: LEAF_CLASSES.get(c, frozenset()) for k, c in props.items()}
    extra_leaf = LEAF_CLASSES.get(extra_check, frozenset()) if extra_check is not None else frozenset()

    def fields(value: Any, path: str, out: list[Issue]) -> None:
        if not isinstance(value, dict):
            return
        for key, item in value.items():
            if item is None:
                continue
            sub = props.get(key)
            if sub is not None:
                if item.__class__ not in leaf_props[key]:  # hot path: a valid leaf costs one set lookup
                    sub(item, f"{path}/{key}", out)
            elif extra_check is not None:
                if item.__class__ not in extra_leaf:
                    extra_check(item, f"{path}/{key}", out)
            elif strict:
                p = f"{path}/{key}"
                out.append(Issue(p, UNKNOWN, f"{_dotted(p)} is not a field of {_dotted(path) or 'the object'}"
                                             f"{_suggest(str(key), known)}"))
        for key in required:
            if value.get(key) is None:
                out.append(Issue(f"{path}/{key}", REQUIRED, f"{_dotted(path)}.{key} is required"))
    steps.append(fields)
    return steps


def _suggest(key: str, known: list[str], list_known: bool = True) -> str:
    """" (did you mean X?)" for a near miss (case, a typo), else the known names when they are few."""
    close = [k for k in known if k.lower() == key.lower()] or difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    if close:
        return f" (did you mean {close[0]}?)"
    return f" (known: {', '.join(known)})" if list_known and len(known) <= 8 else ""


def _matches(check: Check) -> Callable[[Any, str], bool]:
    def ok(value: Any, path: str) -> bool:
        found: list[Issue] = []
        check(value, path, found)
        return not found
    return ok


def _combinator_steps(schema: dict[str, Any]) -> list[Check]:
    steps: list[Check] = []
    for sub in schema.get("allOf") or []:
        steps.append(compile_schema(sub))
    if "oneOf" in schema:
        branches = schema["oneOf"]
        preds = [_matches(compile_schema(b)) for b in branches]
        exclusive = _exclusive_fields(branches)

        def one_of(value: Any, path: str, out: list[Issue]) -> None:
            if exclusive and isinstance(value, dict):
                # the generator's "at most one of" pattern holds exactly when at most one field is set
                if sum(value.get(f) is not None for f in exclusive) <= 1:
                    return
            elif sum(p(value, path) for p in preds) == 1:
                return
            if exclusive and isinstance(value, dict):
                set_ = [f for f in exclusive if value.get(f) is not None]
                out.append(Issue(path, EXCLUSIVE, f"{_dotted(path)}: only one of {', '.join(exclusive)} may be set; "
                                                  f"found {' and '.join(set_)}"))
            else:
                out.append(Issue(path, EXCLUSIVE, f"{_dotted(path)} must match exactly one of its alternatives"))
        steps.append(one_of)
    if "anyOf" in schema:
        preds = [_matches(compile_schema(b)) for b in schema["anyOf"]]

        def any_of(value: Any, path: str, out: list[Issue]) -> None:
            if not any(p(value, path) for p in preds):
                out.append(Issue(path, EXCLUSIVE, f"{_dotted(path)} matches none of its alternatives"))
        steps.append(any_of)
    if "not" in schema:
        pred = _matches(compile_schema(schema["not"]))

        def not_(value: Any, path: str, out: list[Issue]) -> None:
            if pred(value, path):
                out.append(Issue(path, EXCLUSIVE, f"{_dotted(path)} has a combination of fields the API forbids"))
        steps.append(not_)
    return steps


def _rule_steps(schema: dict[str, Any]) -> list[Check]:
    steps: list[Check] = []
    for rule in schema.get("x-kubernetes-validations") or []:
        text = rule.get("rule", "")
        try:
            holds = compile_rule(text)
        except CelUnsupported as exc:
            UNSUPPORTED_RULES[text] = str(exc)
            continue
        message = rule.get("message") or f"must satisfy {text}"
        problem = DURATION if "duration(" in text else RULE

        def cel(value: Any, path: str, out: list[Issue], holds=holds, message=message, problem=problem) -> None:
            if not holds(value):
                shown = f" (got {_short(value)})" if isinstance(value, (str, int, float)) else ""
                if problem == DURATION and isinstance(value, str):
                    try:
                        parse_duration(value)
                    except DurationError as exc:  # say why it is not one, not only what the rule wants
                        shown = f" ({exc})"
                out.append(Issue(path, problem, f"{_dotted(path)}: {message}{shown}", message))
        steps.append(cel)
    return steps
