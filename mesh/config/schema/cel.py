"""A small compiler for the CEL rules of Istio's CRDs (`x-kubernetes-validations`).

The API server evaluates these rules on every object; istioctl reports a failed
one as IST0106. We compile each rule once into a Python closure over the value
(`self`), covering the part of CEL those rules use: literals, `&&`/`||`/`!`,
comparisons, `? :`, `in`, `+`, field access, `has()`, the string functions
(`size`, `contains`, `startsWith`, `endsWith`, `substring`, `matches`), the
macros `all`/`exists`/`exists_one`, and the Kubernetes extensions `int()`,
`duration()`, `url()`/`getScheme()` and `isURL()`. A rule using anything else
raises `CelUnsupported` at compile time (a guard test compiles every rule of the
bundled schema, so an Istio upgrade that needs more is noticed, not skipped).
An evaluation error (an unparsable duration, say) fails the rule, as in the API server.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from mesh.config.schema.durations import DurationError, parse_duration

Env = dict[str, Any]
Fn = Callable[[Env], Any]


class CelUnsupported(ValueError):
    """The rule uses CEL this compiler does not cover."""


class CelError(ValueError):
    """Evaluation failed (a bad duration, a missing field); the rule does not hold."""


_TOKEN = re.compile(r"""\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
                    |(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>&&|\|\||==|!=|<=|>=|[-+*/%<>!?:.,()\[\]{}]))""", re.X)


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise CelUnsupported(f"cannot read {text[pos:pos + 10]!r}")
        pos = m.end()
        if m.group("num") is not None:
            n = m.group("num")
            out.append(("lit", float(n) if "." in n else int(n)))
        elif m.group("str") is not None:
            out.append(("lit", bytes(m.group("str")[1:-1], "utf-8").decode("unicode_escape")))
        elif m.group("id") is not None:
            word = m.group("id")
            if word in ("true", "false"):
                out.append(("lit", word == "true"))
            elif word == "null":
                out.append(("lit", None))
            elif word == "in":
                out.append(("op", "in"))
            else:
                out.append(("id", word))
        else:
            out.append(("op", m.group("op")))
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _size(v: Any) -> int:
    if isinstance(v, (str, list, dict)):
        return len(v)
    raise CelError(f"size() of {type(v).__name__}")


def _int(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        raise CelError(f"cannot convert {v!r} to int") from None


def _duration(v: Any) -> float:
    if not isinstance(v, str):
        raise CelError("a duration must be a string")
    try:
        return parse_duration(v)
    except DurationError as exc:
        raise CelError(str(exc)) from None


def _is_url(v: Any) -> bool:
    if not isinstance(v, str) or not v:
        return False
    try:
        parts = urlsplit(v)
    except ValueError:
        return False
    return bool(parts.scheme) and (bool(parts.netloc) or v.startswith(("file:", "oci:")) or bool(parts.path))


def _url(v: Any) -> Any:
    if not _is_url(v):
        raise CelError(f"{v!r} is not a URL")
    return urlsplit(v)


_FUNCS: dict[str, Callable[..., Any]] = {"size": _size, "int": _int, "duration": _duration, "isURL": _is_url,
                                         "url": _url}


def _method(name: str, target: Any, args: list[Any]) -> Any:
    if name == "size" and not args:
        return _size(target)
    if name == "getScheme" and not args:
        return target.scheme
    if not isinstance(target, str):
        raise CelError(f"{name}() on {type(target).__name__}")
    if name == "contains":
        return args[0] in target
    if name == "startsWith":
        return target.startswith(args[0])
    if name == "endsWith":
        return target.endswith(args[0])
    if name == "matches":
        return re.search(args[0], target) is not None
    if name == "substring":
        if not 0 <= args[0] <= len(target) or (len(args) > 1 and not args[0] <= args[1] <= len(target)):
            raise CelError("substring index out of range")
        return target[args[0]:args[1]] if len(args) > 1 else target[args[0]:]
    raise CelError(f"no method {name}")


_METHODS = frozenset({"size", "getScheme", "contains", "startsWith", "endsWith", "matches", "substring"})
_MACROS = frozenset({"all", "exists", "exists_one"})


def _select(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        if name in obj and obj[name] is not None:
            return obj[name]
        raise CelError(f"no such key: {name}")
    raise CelError(f"cannot select {name} from {type(obj).__name__}")


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
        raise CelError(f"cannot compare {type(a).__name__} with {type(b).__name__}")
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, value: str | None = None) -> bool:
        if self.i >= len(self.toks):
            return False
        kind, v = self.toks[self.i]
        return value is None or (kind == "op" and v == value)

    def take(self, value: str) -> None:
        if not self.peek(value):
            raise CelUnsupported(f"expected {value!r}")
        self.i += 1

    def parse(self) -> Fn:
        fn = self.ternary()
        if self.i != len(self.toks):
            raise CelUnsupported(f"unexpected {self.toks[self.i][1]!r}")
        return fn

    def ternary(self) -> Fn:
        cond = self.binary(0)
        if self.peek("?"):
            self.i += 1
            yes = self.ternary()
            self.take(":")
            no = self.ternary()
            return lambda env: yes(env) if cond(env) else no(env)
        return cond

    _LEVELS: tuple[tuple[str, ...], ...] = (("||",), ("&&",), ("==", "!=", "<", "<=", ">", ">=", "in"), ("+", "-"))

    def binary(self, level: int) -> Fn:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.i < len(self.toks) and self.toks[self.i][0] == "op" and self.toks[self.i][1] in self._LEVELS[level]:
            op = self.toks[self.i][1]
            self.i += 1
            right = self.binary(level + 1)
            left = self._combine(op, left, right)
        return left

    @staticmethod
    def _combine(op: str, a: Fn, b: Fn) -> Fn:
        if op == "||":
            def f_or(env: Env) -> bool:
                try:
                    if a(env) is True:
                        return True
                except CelError:  # CEL's commutative or: an error on one side is absorbed by true on the other
                    if b(env) is True:
                        return True
                    raise
                return b(env) is True
            return f_or
        if op == "&&":
            def f_and(env: Env) -> bool:
                try:
                    if a(env) is False:
                        return False
                except CelError:
                    if b(env) is False:
                        return False
                    raise
                return b(env) is True
            return f_and
        if op == "in":
            return lambda env: a(env) in b(env)
        if op == "+":
            return lambda env: a(env) + b(env)
        if op == "-":
            return lambda env: a(env) - b(env)
        return lambda env: _compare(op, a(env), b(env))

    def unary(self) -> Fn:
        if self.peek("!"):
            self.i += 1
            inner = self.unary()
            return lambda env: not inner(env)
        if self.peek("-"):
            self.i += 1
            inner = self.unary()
            return lambda env: -inner(env)
        return self.member()

    def args(self) -> list[Fn]:
        self.take("(")
        out: list[Fn] = []
        while not self.peek(")"):
            out.append(self.ternary())
            if not self.peek(")"):
                self.take(",")
        self.take(")")
        return out

    def member(self) -> Fn:
        fn = self.primary()
        while self.peek(".") or self.peek("["):
            if self.peek("["):
                self.i += 1
                index = self.ternary()
                self.take("]")
                fn = (lambda t, k: lambda env: _index(t(env), k(env)))(fn, index)
                continue
            self.i += 1
            kind, name = self.toks[self.i]
            if kind != "id":
                raise CelUnsupported("expected a name after '.'")
            self.i += 1
            if not self.peek("("):
                fn = (lambda t, n: lambda env: _select(t(env), n))(fn, name)
            elif name in _MACROS:
                fn = self.macro(fn, name)
            elif name in _METHODS:
                margs = self.args()
                fn = (lambda t, n, a: lambda env: _method(n, t(env), [x(env) for x in a]))(fn, name, margs)
            else:
                raise CelUnsupported(f"method {name}()")
        return fn

    def macro(self, target: Fn, name: str) -> Fn:
        self.take("(")
        kind, var = self.toks[self.i]
        if kind != "id":
            raise CelUnsupported(f"{name}() needs a variable")
        self.i += 1
        self.take(",")
        body = self.ternary()
        self.take(")")

        def run(env: Env) -> bool:
            items = target(env)
            if not isinstance(items, (list, dict)):
                raise CelError(f"{name}() on {type(items).__name__}")
            results = [body({**env, var: x}) is True for x in items]
            if name == "all":
                return all(results)
            if name == "exists":
                return any(results)
            return sum(results) == 1
        return run

    def primary(self) -> Fn:
        if self.i >= len(self.toks):
            raise CelUnsupported("unexpected end")
        kind, v = self.toks[self.i]
        self.i += 1
        if kind == "lit":
            return lambda env: v
        if kind == "op" and v == "(":
            inner = self.ternary()
            self.take(")")
            return inner
        if kind == "op" and v == "[":
            items: list[Fn] = []
            while not self.peek("]"):
                items.append(self.ternary())
                if not self.peek("]"):
                    self.take(",")
            self.take("]")
            return lambda env: [x(env) for x in items]
        if kind == "op" and v == "{":
            entries: list[tuple[Fn, Fn]] = []
            while not self.peek("}"):
                k = self.ternary()
                self.take(":")
                entries.append((k, self.ternary()))
                if not self.peek("}"):
                    self.take(",")
            self.take("}")
            return lambda env: {k(env): x(env) for k, x in entries}
        if kind != "id":
            raise CelUnsupported(f"unexpected {v!r}")
        if self.peek("("):
            if v == "has":
                return self.has()
            if v not in _FUNCS:
                raise CelUnsupported(f"function {v}()")
            fargs = self.args()
            f = _FUNCS[v]
            return lambda env: f(*[x(env) for x in fargs])
        return lambda env: _variable(env, v)

    def has(self) -> Fn:
        """has(x.f): whether x has the field f set; x is compiled on its own, f is the last selection."""
        self.take("(")
        start = self.i
        self.member()  # only to find where the argument ends
        end = self.i
        if end - start < 3 or self.toks[end - 1][0] != "id" or self.toks[end - 2] != ("op", "."):
            raise CelUnsupported("has() needs a field selection")
        field = self.toks[end - 1][1]
        sub = _Parser.__new__(_Parser)
        sub.toks, sub.i = self.toks[start:end - 2], 0
        base = sub.member()
        self.take(")")

        def present(env: Env) -> bool:
            obj = base(env)
            return isinstance(obj, dict) and obj.get(field) is not None
        return present


def _index(target: Any, key: Any) -> Any:
    try:
        return target[key]
    except (KeyError, IndexError, TypeError):
        raise CelError(f"no index {key!r}") from None


def _variable(env: Env, name: str) -> Any:
    if name not in env:
        raise CelError(f"undeclared reference to {name!r}")
    return env[name]


def compile_rule(rule: str) -> Callable[[Any], bool]:
    """`rule` as a predicate over `self`; raises CelUnsupported for CEL outside the covered part."""
    fn = _Parser(rule.replace("\n", " ")).parse()

    def holds(value: Any) -> bool:
        try:
            return fn({"self": value}) is True
        except CelError:
            return False
        except (TypeError, ValueError, AttributeError, LookupError, re.error):
            return False  # a value of an unexpected shape: the rule does not hold (the API server says so too)
    return holds
