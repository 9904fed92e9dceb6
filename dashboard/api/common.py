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


def arg_float(name: str, default: float | None = None, minimum: float = 0.0) -> float | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise QueryError(name, f"expected a number, got {raw!r}") from None
    if value != value or value < minimum:
        raise QueryError(name, f"must be a number >= {minimum:g}, got {raw!r}")
    return value


def check_known(allowed: set[str]) -> None:
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        raise QueryError(unknown[0], f"unknown query parameter (known: {', '.join(sorted(allowed))})")
