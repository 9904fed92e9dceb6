"""What every /api/v1 route shares: JSON answers and one mapping from source errors to status codes."""
from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Callable
from typing import Any

from flask import Response, request

from dashboard.query import QueryError, Unavailable

PREFIX = "/api/v1"
log = logging.getLogger("meshscope.dashboard.api")


def json_response(payload: Any, status: int = 200) -> Response:
    try:
        body = json.dumps(payload, default=str, allow_nan=False)
    except ValueError:  # NaN/inf from a quantile with no samples: JSON has no such numbers, send null
        body = json.dumps(_finite(payload), default=str, allow_nan=False)
    return Response(body, status=status, mimetype="application/json")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def error(status: int, message: str, param: str | None = None) -> Response:
    body: dict[str, Any] = {"error": message}
    if param:
        body["param"] = param
    return json_response(body, status)


def api_route(fn: Callable[..., Any]) -> Callable[..., Response]:
    """Bad arguments -> 400 naming the parameter; a feature or backend the source lacks -> 503; never a traceback.

    503, not 409: nothing about the request conflicts with anything; this server cannot do it
    (no bundled mesh for scenarios, Prometheus unreachable), and clients should treat it so.
    """
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            out = fn(*args, **kwargs)
        except QueryError as exc:
            return error(400, str(exc), exc.param)
        except Unavailable as exc:
            return error(503, str(exc))
        except Exception as exc:  # JSON, not an HTML error page, and the cause in the log
            log.exception("API %s failed", request.path)
            return error(500, f"internal error: {type(exc).__name__}: {exc}")
        return out if isinstance(out, Response) else json_response(out)
    return wrapper


MAX_PARAM_CHARS = 2048  # no parameter here needs more; longer values are refused, not parsed


def _raw(name: str) -> str | None:
    raw = request.args.get(name)
    if raw is not None and len(raw) > MAX_PARAM_CHARS:
        raise QueryError(name, f"value longer than {MAX_PARAM_CHARS} characters")
    return raw


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 40 else raw[:40] + "...")


def arg_float(name: str, default: float | None = None, minimum: float = 0.0,
              maximum: float = 1e12) -> float | None:
    """A finite number in [minimum, maximum]; `inf`, `nan`, `1e400` and out-of-range values name `name`."""
    raw = _raw(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise QueryError(name, f"expected a number, got {_shown(raw)}") from None
    if not math.isfinite(value) or not minimum <= value <= maximum:
        raise QueryError(name, f"must be a finite number between {minimum:g} and {maximum:g}, got {_shown(raw)}")
    return value


def arg_int(name: str, default: int, minimum: int, maximum: int) -> int:
    """A whole number in [minimum, maximum] (written as digits: `1e3` and `10.5` are refused)."""
    raw = _raw(name)
    if raw in (None, ""):
        return default
    text = raw.strip()
    if not (text.isascii() and text.lstrip("+-").isdigit()) or len(text) > 12:
        raise QueryError(name, f"expected a whole number between {minimum} and {maximum}, got {_shown(raw)}")
    value = int(text)
    if not minimum <= value <= maximum:
        raise QueryError(name, f"must be between {minimum} and {maximum}, got {_shown(raw)}")
    return value


def arg_choice(name: str, choices: tuple[str, ...], default: str | None = None, many: bool = False) -> str | None:
    """One of `choices` (with `many`, a comma list of them); anything else names `name` and the choices."""
    raw = _raw(name)
    if raw in (None, ""):
        return default
    values = [v.strip() for v in raw.split(",")] if many else [raw]
    bad = [v for v in values if v not in choices]
    if bad or not values:
        raise QueryError(name, f"unknown value {_shown(bad[0] if bad else raw)} (known: {', '.join(choices)})")
    return raw


def arg_text(name: str) -> str | None:
    """A free-text parameter (a name, a namespace), bounded in length."""
    raw = _raw(name)
    return raw or None


def live_backend(source: Any, needs: str) -> Any:
    """The source's running backend (live config snapshot and rates); `Unavailable` saying what `needs` it otherwise.

    Snapshots and saved reports have neither, so the what-if, canary and dry-run answers are refused on them."""
    backend = getattr(source, "backend", None)
    if backend is None or not hasattr(backend, "rates") or not hasattr(backend, "snapshot"):
        raise Unavailable(f"{needs} need live config and traffic (`meshscope up` or `serve`)")
    return backend


def check_known(allowed: set[str]) -> None:
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        raise QueryError(unknown[0], f"unknown query parameter (known: {', '.join(sorted(allowed))})")


def install_errors(server: Any) -> None:
    """JSON, not Dash's HTML page, for unknown /api/v1 routes (404) and wrong methods (405)."""
    from dash.exceptions import DependencyException
    from werkzeug.exceptions import MethodNotAllowed, NotFound

    @server.route(f"{PREFIX}/<path:rest>", methods=["GET", "HEAD"])
    def api_unknown(rest: str):  # noqa: ANN202 - a GET under /api/v1 Dash would otherwise answer with its page
        return error(404, f"no API route {PREFIX}/{rest[:200]} (see docs/ui.md for the routes)")

    @server.route(PREFIX, methods=["GET", "HEAD"])
    @server.route(f"{PREFIX}/", methods=["GET", "HEAD"])
    def api_root():  # noqa: ANN202
        return error(404, f"no API route {PREFIX}/ (see docs/ui.md for the routes)")

    def not_found(exc: NotFound):  # noqa: ANN202
        if request.path.startswith(PREFIX):
            return error(404, f"no API route {request.path[:200]}")
        return exc

    def not_allowed(exc: MethodNotAllowed):  # noqa: ANN202
        if not request.path.startswith(PREFIX):
            return exc
        adapter = server.url_map.bind("localhost")
        allowed = []  # methods a real route (not the catch-all) takes on this path
        for method in sorted(set(exc.valid_methods or []) - {"OPTIONS"}):
            try:
                endpoint, _ = adapter.match(request.path, method=method)
            except Exception:
                continue
            if endpoint not in ("api_unknown", "api_root"):
                allowed.append(method)
        if not allowed:
            return error(404, f"no API route {request.method} {request.path[:200]}")
        resp = error(405, f"{request.method} is not allowed on {request.path[:200]} (allowed: {', '.join(allowed)})")
        resp.headers["Allow"] = ", ".join(allowed)
        return resp

    def no_such_asset(exc: Exception):  # noqa: ANN202
        # Dash raises this for a /_dash-component-suites path it does not serve ("../../etc/passwd"): a 404, not a
        # 500 with a logged traceback that quotes the requested path (newlines and all)
        return error(404, "no such component asset")

    server.register_error_handler(NotFound, not_found)
    server.register_error_handler(MethodNotAllowed, not_allowed)
    server.register_error_handler(DependencyException, no_such_asset)
