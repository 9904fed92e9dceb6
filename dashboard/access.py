"""Who may read the UI and API.

On 127.0.0.1 the machine's users are trusted, as with Prometheus or Kiali's
anonymous mode. Bound anywhere else, every request needs the token: an
`Authorization: Bearer` header (API clients, scrapers) or the cookie the login
page sets (browsers). Without it the answer is 401 and carries no data.
"""
from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
from urllib.parse import urlsplit

from flask import Flask, Response, redirect, request

COOKIE = "meshscope_session"
OPEN_PATHS = ("/healthz", "/login")


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


def install_access(server: Flask, token: str | None) -> None:
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

    if token is None:
        return

    @server.before_request
    def require_token():  # noqa: ANN202 - Flask hook
        if request.path in OPEN_PATHS or _authorized(token):
            return None
        if request.path.startswith(("/api/", "/metrics", "/_dash", "/assets", "/_reload", "/_favicon")):
            return Response('{"error": "missing or wrong token"}', status=401, mimetype="application/json",
                            headers={"WWW-Authenticate": 'Bearer realm="meshscope"'})
        return login_page(request.full_path.rstrip("?"))
