"""Token access over real HTTP: 401 and no data without the token, for the API and the pages."""
import httpx
import pytest

from dashboard.access import AccessError, check_bind, is_loopback
from dashboard.sample import bookinfo_snapshot
from dashboard.server import start
from dashboard.snapshot_source import SnapshotSource

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def guarded():
    ui = start(SnapshotSource(bookinfo_snapshot()), port=0, token=TOKEN)
    yield ui
    ui.stop()


def test_binding_beyond_loopback_needs_a_token():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", TOKEN)
    with pytest.raises(AccessError, match="binding to 0.0.0.0 .* pass a token"):
        check_bind("0.0.0.0", None)
    with pytest.raises(AccessError):  # refused before anything listens
        start(SnapshotSource(bookinfo_snapshot()), host="0.0.0.0", port=0)


@pytest.mark.parametrize("path", ["/api/v1/findings", "/api/v1/graph", "/api/v1/traces", "/api/v1/slos", "/metrics",
                                  "/_dash-layout", "/", "/topology", "/findings?fp=x"])
@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Basic czNjcmV0LXRva2Vu", f"Bearer {TOKEN}x"])
def test_missing_or_wrong_token_gets_401_and_no_data(guarded, path, auth):
    headers = {"Authorization": auth} if auth else {}
    r = httpx.get(guarded.url + path, headers=headers, cookies={"meshscope_session": "forged"})
    assert r.status_code == 401
    assert "ratings" not in r.text and "MS2001" not in r.text
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_bearer_token_opens_the_api(guarded):
    r = httpx.get(guarded.url + "/api/v1/findings", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and any(f["code"] == "MS2001" for f in r.json())
    assert httpx.get(guarded.url + "/healthz").status_code == 200  # liveness carries no data


def test_login_page_sets_a_session_cookie(guarded):
    with httpx.Client(base_url=guarded.url) as c:
        page = c.get("/findings")
        assert page.status_code == 401 and 'name="token"' in page.text and 'value="/findings"' in page.text
        wrong = c.post("/login", data={"token": "nope", "next": "/findings"})
        assert wrong.status_code == 401 and "Wrong token" in wrong.text and not c.cookies
        ok = c.post("/login", data={"token": TOKEN, "next": "/findings"})
        assert ok.status_code == 303 and ok.headers["location"] == "/findings"
        assert TOKEN not in ok.headers["set-cookie"] and "HttpOnly" in ok.headers["set-cookie"]
        assert c.get("/api/v1/slos").status_code == 200
        assert c.get("/_dash-layout").status_code == 200


def test_login_does_not_redirect_off_site(guarded):
    r = httpx.post(guarded.url + "/login", data={"token": TOKEN, "next": "https://evil.example/x"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    r = httpx.get(guarded.url + "/login", params={"next": '"><script>alert(1)</script>'})
    assert "<script>alert(1)" not in r.text


def test_no_token_on_loopback_means_open(ui_server):
    ui = ui_server(SnapshotSource(bookinfo_snapshot()))
    assert httpx.get(ui.url + "/api/v1/findings").status_code == 200
    assert httpx.get(ui.url + "/login", follow_redirects=False).status_code == 302
