"""Dash's callback endpoint takes whatever JSON it is sent: a malformed request gets a 400 naming what is wrong.

Dash reads the body with `request.get_json()` and indexes into it, so a body that is not a
callback request (a list, a string, `{}`, inputs that are not objects, JSON nested past the
interpreter's limit) raised inside Dash: a 500 and a logged traceback per request, which any
local user could repeat to flood the log. The envelope is checked here first, on the body Flask
decodes once and keeps for Dash (no second parse); the values inside it are the callbacks' own business.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

CALLBACK_PATH = "/_dash-update-component"


MAX_BINDING_DEPTH = 3  # a binding list, pattern-matching callbacks' list per wildcard, and one more to spare


def _bindings_problem(name: str, value: Any) -> str | None:
    """`inputs`/`state`/`outputs`: {id, property} objects, or lists of them (pattern-matching callbacks).

    Walked without recursion: a body nested just short of the JSON decoder's limit would otherwise raise
    RecursionError here (the 500 and traceback this module exists to prevent)."""
    stack = [(name, value if isinstance(value, list) else [value], 1)]
    while stack:
        where, items, depth = stack.pop()
        for i, item in enumerate(items):
            if isinstance(item, list):
                if depth >= MAX_BINDING_DEPTH:
                    return f"{where}[{i}]: lists nested deeper than {MAX_BINDING_DEPTH}"
                stack.append((f"{where}[{i}]", item, depth + 1))
            elif not (isinstance(item, dict) and "id" in item and isinstance(item.get("property"), str)):
                return f"{where}[{i}]: expected an object with `id` and `property`"
    return None


def envelope_problem(doc: Any) -> str | None:
    """Why the decoded body `doc` is not a Dash callback request, or None when its shape is one."""
    if not isinstance(doc, dict):
        return "the callback request must be a JSON object"
    if not isinstance(doc.get("output"), str):
        return "output: expected a string"
    for key in ("outputs", "inputs", "state"):
        if key in doc:
            problem = _bindings_problem(key, doc[key])
            if problem:
                return problem
    if not isinstance(doc.get("inputs", []), list) or not isinstance(doc.get("state", []), list):
        return "inputs and state: expected lists"
    changed = doc.get("changedPropIds", [])
    if not (isinstance(changed, list) and all(isinstance(c, str) for c in changed)):
        return "changedPropIds: expected a list of strings"
    return None


def _decoded() -> tuple[Any, int, str | None]:
    """(body, 0, None), decoded once by Flask and kept in its cache for Dash's own `get_json()`; else
    (None, status, why). The server bounds the body's size (4 MiB)."""
    try:
        return request.get_json(), 0, None
    except RecursionError:
        return None, 400, "the callback request nests too deeply to decode"
    except HTTPException as exc:  # not JSON (400), not declared JSON (415)
        return None, exc.code or 400, f"the callback request is not JSON ({exc.name})"


def install_callback_guard(server: Flask, known_outputs: Callable[[], Collection[str]] | None = None) -> None:
    """Refuse malformed callback requests with a JSON 400 before Dash reads them (after the access checks).

    `known_outputs` gives the app's registered callback outputs (Dash's `callback_map`): a request for
    any other output is refused here too (Dash raised KeyError on it: a 500)."""

    @server.before_request
    def check_callback_envelope():  # noqa: ANN202 - Flask hook
        if request.path != CALLBACK_PATH or request.method != "POST":
            return None
        doc, status, problem = _decoded()
        if problem is None:
            problem, status = envelope_problem(doc), 400
        if problem is None and known_outputs is not None and doc["output"] not in known_outputs():
            problem, status = f"output: no callback updates {doc['output'][:200]!r}", 404
        if problem is None:
            return None
        return Response(json.dumps({"error": problem}), status=status, mimetype="application/json")
