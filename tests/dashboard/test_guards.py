"""Host and origin guards and security headers over real HTTP, with and without a token."""
from __future__ import annotations

import httpx
import pytest

from dashboard.access import host_allowed, host_name
from dashboard.sample import bookinfo_snapshot
from dashboard.server import start
from dashboard.snapshot_source import SnapshotSource

TOKEN = "guard-token"


@pytest.fixture(scope="module")
def servers():
    open_ui = start(SnapshotSource(bookinfo_snapshot()), port=0, allowed_hosts=(".corp.example",))
    guarded = start(SnapshotSource(bookinfo_snapshot()), port=0, token=TOKEN)
    yield open_ui, guarded
    open_ui.stop()
    guarded.stop()


def test_host_names_parse_and_match():
    assert host_name("LocalHost:8050") == "localhost" and host_name("[::1]:8050") == "::1"
    assert host_name("127.0.0.1") == "127.0.0.1" and host_name("fe80::1") == "fe80::1"
    for name in ("127.0.0.1", "::1", "10.1.2.3", "localhost", "ui.localhost", "mesh.corp.example"):
        assert host_allowed(name, "127.0.0.1", (".corp.example",)), name
    for name in ("evil.example", "corp.example.evil", "127.0.0.1.nip.io", "", "localhost.evil"):
        assert not host_allowed(name, "127.0.0.1", (".corp.example",)), name
    assert host_allowed("mesh-ui", "mesh-ui", ())  # the bound name itself


@pytest.mark.parametrize("host, status", [("evil.example", 421), ("127.0.0.1.nip.io:8050", 421),
                                          ("localhost:1", 200), ("[::1]:8050", 200), ("mesh.corp.example", 200)])
def test_host_header_is_checked_on_every_path(servers, host, status):
    ui = servers[0]
    for path in ("/api/v1/findings", "/", "/_dash-layout", "/healthz"):
        r = httpx.get(ui.url + path, headers={"Host": host})
        assert r.status_code == status, (host, path)
        if status == 421:
            assert "--allowed-host" in r.json()["error"] and "MS2001" not in r.text


def _origin(ui) -> str:
    return ui.url


@pytest.mark.parametrize("headers, allowed", [
    ({}, False),  # no proof at all (a form from a page that sends no Origin, e.g. a privacy extension)
    ({"X-Meshscope-CSRF": "1"}, True),
    ({"Origin": "SELF"}, True),
    ({"Sec-Fetch-Site": "same-origin"}, True),
    ({"Sec-Fetch-Site": "none"}, False),  # typed into the address bar: not a POST a user makes; still no proof
    ({"Origin": "http://evil.example"}, False),
    ({"Origin": "null"}, False),
    ({"Origin": "SELF", "Sec-Fetch-Site": "cross-site"}, False),
    ({"X-Meshscope-CSRF": "1", "Sec-Fetch-Site": "same-site"}, False),
    ({"X-Meshscope-CSRF": "1", "Origin": "http://127.0.0.1:1"}, False),
])
def test_state_changes_need_a_same_origin_proof(servers, headers, allowed):
    ui = servers[0]
    headers = {k: (ui.url if v == "SELF" else v) for k, v in headers.items()}
    for method, path in (("POST", "/api/v1/scenarios/mtls-mismatch"), ("DELETE", "/api/v1/scenarios"),
                         ("POST", "/_dash-update-component")):
        r = httpx.request(method, ui.url + path, headers=headers)
        if allowed:
            assert r.status_code != 403, (method, path, r.text[:200])
        else:
            assert r.status_code == 403 and r.json()["error"], (method, path)
    # reads are not state changes; another site's page still may not load them (a subresource: no navigation)
    foreign = headers.get("Sec-Fetch-Site") in ("cross-site", "same-site")
    assert httpx.get(ui.url + "/api/v1/findings", headers=headers).status_code == (403 if foreign else 200)


def test_with_a_token_the_bearer_is_a_proof_and_cross_origin_still_refused(servers):
    guarded = servers[1]
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.post(guarded.url + "/api/v1/scenarios/mtls-mismatch", headers=bearer)
    assert r.status_code == 503  # past both guards; a snapshot cannot apply scenarios
    r = httpx.post(guarded.url + "/api/v1/scenarios/mtls-mismatch", headers={**bearer, "Origin": "http://evil.example"})
    assert r.status_code == 403
    # the login form works from its own page, not from another origin
    assert httpx.post(guarded.url + "/login", data={"token": TOKEN}, headers={"Origin": guarded.url}).status_code == 303
    assert httpx.post(guarded.url + "/login", data={"token": TOKEN},
                      headers={"Origin": "http://evil.example"}).status_code == 403


def test_security_headers_on_pages_api_and_errors(servers):
    ui = servers[0]
    for path in ("/", "/api/v1/findings", "/api/v1/nope", "/_dash-layout"):
        h = httpx.get(ui.url + path).headers
        csp = h["content-security-policy"]
        script_src = csp.split("script-src")[1].split(";")[0]
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src and "'sha256-" in script_src
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "same-origin"


@pytest.mark.parametrize("headers, allowed", [
    ({}, True),  # curl, scrapers, a server-side client: no Fetch Metadata
    ({"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}, True),  # the UI itself
    ({"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}, True),  # typed URL
    ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}, True),  # a link
    ({"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}, True),
    ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}, False),  # <img>
    ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "script"}, False),
    ({"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}, False),  # fetch()
    ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}, False),  # framed
    ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}, False),
])
def test_other_sites_may_link_but_not_load_subresources(servers, headers, allowed):
    ui = servers[0]
    for path in ("/api/v1/report?format=json", "/api/v1/graph", "/", "/_dash-layout", "/metrics"):
        r = httpx.get(ui.url + path, headers=headers)
        if allowed:
            assert r.status_code == 200, (path, r.text[:200])
        else:
            assert r.status_code == 403 and "subresource" in r.json()["error"], path


def test_made_up_methods_add_no_metric_series(servers):
    """Any token is a method to the HTTP parser; one series each would grow /metrics without bound (and bound
    beyond loopback, before the token is checked: the guarded server counts unauthenticated requests too)."""
    import socket

    for ui in servers:
        port = int(ui.url.rsplit(":", 1)[1])
        for i in range(12):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(f"MADE{i}UP /api/v1/findings HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
                assert s.recv(64).startswith(b"HTTP/1.1 4")
        text = httpx.get(ui.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
        methods = {line.split('method="')[1].split('"')[0] for line in text.splitlines()
                   if line.startswith("meshscope_ui_http_requests_total{")}
        assert "other" in methods and not any(m.startswith("MADE") for m in methods), methods


@pytest.mark.parametrize("body", [
    "[" * 100_000 + "]" * 100_000,  # past the interpreter's nesting limit
    # just under the decoder's limit: it decodes, so the envelope's own walk must not recurse that deep
    '{"output": "a.children", "inputs": ' + "[" * 980 + "]" * 980 + "}",
    '{"output": "a.children", "inputs": [[[[{"id": "x", "property": "value"}]]]]}',  # deeper than any callback
    "[]", '"x"', "null", "{}", '{"output": 1}', "not json", b"\xff\xfe{",
    '{"output": "a.children", "inputs": {"id": "x"}}',
    '{"output": "a.children", "inputs": [1, 2]}',
    '{"output": "a.children", "inputs": [{"id": "x"}]}',
    '{"output": "a.children", "outputs": "x", "inputs": []}',
    '{"output": "a.children", "inputs": [], "changedPropIds": [{"a": 1}]}',
])
def test_malformed_callback_requests_get_a_400_not_a_traceback(servers, body, caplog):
    ui = servers[0]
    with caplog.at_level("ERROR"):
        r = httpx.post(ui.url + "/_dash-update-component", content=body,
                       headers={"Content-Type": "application/json", "X-Meshscope-CSRF": "1"})
    assert r.status_code == 400 and r.json()["error"], r.text[:200]
    assert not [rec for rec in caplog.records if rec.exc_info]


def test_a_callback_for_an_output_no_callback_updates_is_a_404(servers, caplog):
    with caplog.at_level("ERROR"):
        r = httpx.post(servers[0].url + "/_dash-update-component", headers={"X-Meshscope-CSRF": "1"},
                       json={"output": "nope.children", "outputs": {"id": "nope", "property": "children"},
                             "inputs": [], "changedPropIds": []})
    assert r.status_code == 404 and "nope.children" in r.json()["error"]
    assert not [rec for rec in caplog.records if rec.exc_info]


def test_api_json_bodies_are_bounded(servers):
    ui = servers[0]
    r = httpx.post(ui.url + "/api/v1/impact", content="[" * 100_000 + "]" * 100_000,
                   headers={"Content-Type": "application/json", "X-Meshscope-CSRF": "1"})
    assert r.status_code == 400 and r.json()["param"] == "body"


@pytest.mark.parametrize("path", ["/_dash-component-suites/dash/..%2f..%2fetc%2fpasswd",
                                  "/_dash-component-suites/os/path.py",
                                  "/_dash-component-suites/dash/x%0a[00:00:00]%20ERROR%20forged.js"])
def test_unknown_component_assets_are_404_without_a_logged_traceback(servers, path, caplog):
    with caplog.at_level("ERROR"):
        r = httpx.get(servers[0].url + path)
    assert r.status_code == 404 and "passwd" not in r.text
    assert not [rec for rec in caplog.records if rec.exc_info or "forged" in rec.getMessage()]
