"""Who may read the UI and API, and which browsers may change things through them.

On 127.0.0.1 the machine's users are trusted, as with Prometheus or Kiali's
anonymous mode. Bound anywhere else, every request needs the token: an
`Authorization: Bearer` header (API clients, scrapers) or the cookie the login
page sets (browsers). Without it the answer is 401 and carries no data.

Loopback does not make the operator's browser trustworthy: any web page it opens
can send requests to 127.0.0.1. So, for every server and token setting:

- the `Host` header must name this server (an IP literal, a loopback name, the bound
  name or an `--allowed-host`), which defeats DNS rebinding (a hostile name that
  resolves to 127.0.0.1 makes the browser send that name as Host);
- a request that changes state (any method but GET/HEAD/OPTIONS) is refused when
  the browser marks it cross-origin (`Origin`, `Sec-Fetch-Site`), and otherwise
  needs a same-origin proof a foreign page cannot forge without CORS: a matching
  `Origin` (browsers send it on every POST), `Sec-Fetch-Site: same-origin`, the
  `X-Meshscope-CSRF` header (any value; scripts and curl), or the bearer token;
- a read another site's page makes as a subresource (image, script, frame, fetch) is refused;
  only top-level navigations (links) come through from other sites.
"""
from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
from collections.abc import Callable, Collection
from urllib.parse import urlsplit

from flask import Flask, Response, redirect, request

from dashboard.callback_guard import install_callback_guard

COOKIE = "meshscope_session"
OPEN_PATHS = ("/healthz", "/login")
CSRF_HEADER = "X-Meshscope-CSRF"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class AccessError(ValueError):
    """Refusing to serve: bound off loopback without a token."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Serving beyond this machine requires a token; say so before anything listens."""
    if not is_loopback(host) and not token:
        raise AccessError(f"binding to {host} exposes mesh data beyond this machine; pass a token "
                          "(--token or MESHSCOPE_TOKEN) or bind to 127.0.0.1")


def session_value(token: str) -> str:
    """The cookie holds a MAC of the token, not the token itself."""
    return hmac.new(token.encode(), b"meshscope-ui-session", hashlib.sha256).hexdigest()


def _authorized(token: str) -> bool:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        return True
    cookie = request.cookies.get(COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), session_value(token).encode())


_LOGIN = """<!doctype html><html><head><meta charset="utf-8"><title>meshscope: sign in</title>
<style>body{{font-family:sans-serif;background:#f3f4f6;display:flex;justify-content:center;padding-top:12vh}}
form{{background:#fff;padding:24px 28px;border-radius:8px;box-shadow:0 1px 4px #0002;min-width:320px}}
input{{width:100%;padding:8px;margin:8px 0 14px;box-sizing:border-box}}.err{{color:#c9190b}}</style></head>
<body><form method="post" action="/login"><h2>meshscope</h2><p>This dashboard needs its access token.</p>
{error}<label for="token">Token</label><input id="token" name="token" type="password" autofocus>
<input type="hidden" name="next" value="{next}"><button id="login-submit" type="submit">Sign in</button></form></body></html>"""


def _safe_next(target: str | None) -> str:
    """Only same-site paths, so the login page cannot be used as an open redirect."""
    parts = urlsplit(target or "/")
    if parts.scheme or parts.netloc or not (parts.path or "/").startswith("/"):
        return "/"
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def login_page(next_path: str, error: str = "", status: int = 401) -> Response:
    err = f'<p class="err">{html.escape(error)}</p>' if error else ""
    body = _LOGIN.format(error=err, next=html.escape(_safe_next(next_path), quote=True))
    return Response(body, status=status, mimetype="text/html",
                    headers={"WWW-Authenticate": 'Bearer realm="meshscope"', "Cache-Control": "no-store"})


def host_name(header: str) -> str:
    """The name in a Host header, without port or IPv6 brackets, lower-case."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def host_allowed(name: str, bind_host: str, allowed: tuple[str, ...]) -> bool:
    """IP literals (rebinding needs a name), loopback names, the bound name and operator-configured names.

    An allowed entry starting with a dot ('.corp.example') allows every name under it.
    """
    if not name:
        return False
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    if name == "localhost" or name.endswith(".localhost") or name == bind_host.lower().strip("[]"):
        return True
    for entry in allowed:
        entry = entry.strip().lower()
        if entry and (name == entry or (entry.startswith(".") and name.endswith(entry))):
            return True
    return False


def _denied(status: int, message: str) -> Response:
    import json
    return Response(json.dumps({"error": message}), status=status, mimetype="application/json",
                    headers={"Cache-Control": "no-store"})


def _same_origin(origin: str) -> bool:
    """Whether an Origin header names the very server being asked (host and port).

    The scheme is not compared: behind a TLS-terminating proxy the page is https while this
    server sees http, and one host:port never serves two schemes otherwise.
    """
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == request.host.lower()


def origin_problem(token: str | None) -> str | None:
    """Why a state-changing request must be refused as cross-origin or unproven, or None to let it through."""
    site = request.headers.get("Sec-Fetch-Site", "").lower()
    if site in ("cross-site", "same-site"):
        return f"cross-origin request refused (Sec-Fetch-Site: {site})"
    origin = request.headers.get("Origin")
    if origin is not None and not _same_origin(origin):
        return f"cross-origin request refused (Origin: {origin[:100]})"
    if request.path == "/login":  # the login form itself; it only sets a cookie for the right token
        return None
    if origin is not None or site == "same-origin" or request.headers.get(CSRF_HEADER):
        return None
    if token is not None and _authorized(token):
        return None
    return (f"a state-changing request needs a same-origin proof: send the header '{CSRF_HEADER}: 1' "
            "(or 'Authorization: Bearer <token>')")


def embedding_problem() -> str | None:
    """Why a read must be refused as another site's subresource request, or None to let it through.

    A page on another site may link to the UI (a top-level navigation: alert links, bookmarks, a wiki)
    but has no reason to load it as an image, script, frame or `fetch`: such requests only let a page
    make the operator's machine render reports and graphs for it (a PDF costs ~0.7 s of CPU; an `<img>`
    loop keeps every worker busy) and time the answers. Browsers mark them with Fetch Metadata; clients
    that send none (curl, scrapers, Grafana's server side) are not browsers and pass.
    """
    site = request.headers.get("Sec-Fetch-Site", "").lower()
    if site not in ("cross-site", "same-site"):
        return None
    mode = request.headers.get("Sec-Fetch-Mode", "").lower()
    dest = request.headers.get("Sec-Fetch-Dest", "document").lower()
    if mode == "navigate" and dest == "document" and request.method in ("GET", "HEAD"):
        return None
    return (f"refused: another site's page may link here but not load this as a subresource "
            f"(Sec-Fetch-Site: {site[:20]}, Sec-Fetch-Mode: {mode[:20]}, Sec-Fetch-Dest: {dest[:20]})")


def install_guards(server: Flask, token: str | None, bind_host: str = "127.0.0.1",
                   allowed_hosts: tuple[str, ...] = ()) -> None:
    """The Host check and the cross-origin check, before anything else runs (tokens or not)."""

    @server.before_request
    def check_host_and_origin():  # noqa: ANN202 - Flask hook
        name = host_name(request.host or "")
        if not host_allowed(name, bind_host, allowed_hosts):
            return _denied(421, f"this server does not answer to Host {name[:100]!r}; if that is how you reach "
                                "it, start it with --allowed-host NAME")
        problem = origin_problem(token) if request.method not in SAFE_METHODS else embedding_problem()
        if problem:
            return _denied(403, problem)
        return None


def install_access(server: Flask, token: str | None, known_outputs: Callable[[], Collection[str]] | None = None) -> None:
    """Add the token check and the login route; no-op checks when `token` is None (loopback use)."""

    @server.route("/login", methods=["GET", "POST"])
    def login():  # noqa: ANN202 - Flask view
        if token is None:
            return redirect("/")
        if request.method == "GET":
            return login_page(request.args.get("next", "/"), status=200)
        given = request.form.get("token", "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return login_page(request.form.get("next", "/"), "Wrong token.")
        resp = redirect(_safe_next(request.form.get("next")), code=303)
        resp.set_cookie(COOKIE, session_value(token), httponly=True, samesite="Strict",
                        secure=request.is_secure, path="/")
        return resp

    if token is not None:
        @server.before_request
        def require_token():  # noqa: ANN202 - Flask hook
            if request.path in OPEN_PATHS or _authorized(token):
                return None
            if request.path.startswith(("/api/", "/metrics", "/_dash", "/assets", "/_reload", "/_favicon")):
                return Response('{"error": "missing or wrong token"}', status=401, mimetype="application/json",
                                headers={"WWW-Authenticate": 'Bearer realm="meshscope"'})
            return login_page(request.full_path.rstrip("?"))

    install_callback_guard(server, known_outputs)  # after the token: bodies of unauthenticated requests are not parsed
