"""A hostile web page in real Chromium cannot change the mesh through the UI, nor read it by DNS rebinding.

The UI serves a source whose scenarios are recorded when applied. A page on another
origin (another port on 127.0.0.1, as any site the operator opens could be) tries an
auto-submitted form, a text/plain form aimed at Dash's callback endpoint and no-cors
fetches; none may apply anything. The UI's own page still applies a scenario and
still renders through Dash's callbacks (CSP and the origin checks let it).
"""
from __future__ import annotations


import httpx
import pytest

from dashboard.sample import bookinfo_snapshot
from dashboard.snapshot_source import SnapshotSource
from tests.util import BodyServer, wait_until

pytestmark = pytest.mark.browser

SCENARIO = "mtls-mismatch"


class RecordingSource(SnapshotSource):
    """The sample snapshot, plus scenarios that record being applied (the mesh side is not under test)."""

    def __init__(self) -> None:
        super().__init__(bookinfo_snapshot())
        self.applied: list[str | None] = []

    def scenarios(self):
        return [{"name": SCENARIO, "description": "mTLS mismatch", "active": False}]

    def apply_scenario(self, name):
        self.applied.append(name)


ATTACK = """<!doctype html><html><body>
<form id="f1" method="POST" action="{ui}/api/v1/scenarios/{scenario}" target="sink1">
  <input name="x" value="1"></form>
<form id="f2" method="POST" action="{ui}/_dash-update-component" enctype="text/plain" target="sink2">
  <input name='{{"output":"ov-scenario-status.children","outputs":{{"id":"ov-scenario-status","property":"children"}},"inputs":[{{"id":"ov-apply","property":"n_clicks","value":1}},{{"id":"ov-clear","property":"n_clicks","value":0}}],"changedPropIds":["ov-apply.n_clicks"],"state":[{{"id":"ov-scenario","property":"value","value":"{scenario}"}}],"x":"' value='"}}'></form>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe>
<script>
window.results = [];
const hit = (label, p) => p.then(r => window.results.push(label + ":" + r.type + ":" + r.status))
                           .catch(e => window.results.push(label + ":error"));
hit("nocors-post", fetch("{ui}/api/v1/scenarios/{scenario}", {{method: "POST", mode: "no-cors", body: "x"}}));
hit("nocors-delete", fetch("{ui}/api/v1/scenarios", {{method: "DELETE", mode: "no-cors"}}));
hit("cors-json", fetch("{ui}/api/v1/scenarios/{scenario}", {{method: "POST", headers: {{"X-Meshscope-CSRF": "1"}}}}));
hit("read", fetch("{ui}/api/v1/findings"));
document.getElementById("f1").submit();
document.getElementById("f2").submit();
</script></body></html>"""


@pytest.fixture
def attacker():
    """A web server on another origin serving the attack page; `attacker(ui_url)` returns its URL."""
    pages: dict[str, bytes] = {}

    server = BodyServer(pages.get, content_type="text/html")

    def serve(ui_url: str) -> str:
        pages["/attack.html"] = ATTACK.format(ui=ui_url, scenario=SCENARIO).encode()
        return f"{server.url}/attack.html"
    serve.pages = pages  # other pages a test serves beside it
    yield serve
    server.close()


def test_a_page_on_another_origin_cannot_apply_a_fault(browser, ui_server, attacker):
    source = RecordingSource()
    ui = ui_server(source)
    browser.get(attacker(ui.url))
    wait_until(lambda: len(browser.execute_script("return window.results") or []) >= 4, 30, what="the attacks ran")
    results = browser.execute_script("return window.results")
    # the cross-origin reads and the CORS request fail in the browser; no-cors requests are opaque
    assert any(r.startswith("read:error") for r in results) and any(r.startswith("cors-json:error") for r in results)
    # both forms have been submitted and answered (their frames navigated away from about:blank)
    for frame in ("sink1", "sink2"):
        browser.switch_to.frame(frame)
        wait_until(lambda: browser.execute_script("return document.readyState") == "complete"
                   and browser.execute_script("return location.href") != "about:blank", 30, what=f"{frame} answered")
        browser.switch_to.default_content()
    assert source.applied == []

    # the UI's own page: Dash renders through its callbacks, and a same-origin request applies the scenario
    browser.get(ui.url + "/")
    wait_until(lambda: browser.find_elements("css selector", "#ov-scenario"), 60, what="overview rendered by Dash")
    browser.execute_script(f"fetch('/api/v1/scenarios/{SCENARIO}', {{method: 'POST'}})")
    wait_until(lambda: source.applied == [SCENARIO], 30, what="same-origin apply")
    csp = httpx.get(ui.url + "/").headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]


def test_dns_rebinding_gets_no_data(ui_server):
    """Chromium resolving a foreign name to 127.0.0.1 (what rebinding achieves) sends that name as Host: refused."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    from tests.fixtures.browser import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS

    source = RecordingSource()
    ui = ui_server(source)
    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    opts.add_argument("--host-resolver-rules=MAP rebind.example 127.0.0.1")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        port = ui.url.rsplit(":", 1)[1]
        driver.get(f"http://rebind.example:{port}/api/v1/findings")
        body = driver.find_element("tag name", "body").text
        assert "does not answer to Host 'rebind.example'" in body and "MS2001" not in body
        driver.execute_script(f"fetch('/api/v1/scenarios/{SCENARIO}', {{method: 'POST'}})")
        driver.get(f"http://rebind.example:{port}/")
        assert "allowed-host" in driver.find_element("tag name", "body").text
    finally:
        driver.quit()
    assert source.applied == []
    # names the operator configures are answered
    from dashboard.server import start
    named = start(source, port=0, allowed_hosts=("rebind.example",))
    try:
        r = httpx.get(named.url + "/api/v1/findings", headers={"Host": f"rebind.example:{named.url.rsplit(':', 1)[1]}"})
        assert r.status_code == 200
        assert httpx.get(named.url + "/healthz", headers={"Host": "evil.example"}).status_code == 421
    finally:
        named.stop()


# each URL differs (percent-encoded letters read the same) so the browser asks for every one
EMBED = """<!doctype html><html><body>
<img src="{ui}/api/v1/report?format=json"><img src="{ui}/api/v1/report?format=md">
<script src="{ui}/api/v1/report?format=html"></script>
<link rel="stylesheet" href="{ui}/api/v1/report?format=%6Ason">
<iframe src="{ui}/api/v1/report?format=%6Dd"></iframe>
<a id="link" href="{ui}/findings">meshscope</a>
<script>
window.results = [];
window.addEventListener("load", () => window.results.push("loaded"));
fetch("{ui}/api/v1/report?format=%68tml", {{mode: "no-cors"}})
  .then(r => window.results.push("fetch:" + r.type)).catch(e => window.results.push("fetch:error"));
</script></body></html>"""


class CountingSource(RecordingSource):
    def __init__(self) -> None:
        super().__init__()
        self.reports = 0

    def report(self, fmt):
        self.reports += 1
        return super().report(fmt)


def test_a_page_on_another_origin_cannot_load_the_ui_but_can_link_to_it(browser, ui_server, attacker):
    """Images, scripts, styles, frames and no-cors fetches of the UI from another site never reach a handler
    (each would render a report for the page); a link still opens the UI, which then works as usual."""
    source = CountingSource()
    ui = ui_server(source)
    url = attacker(ui.url)
    attacker.pages["/embed.html"] = EMBED.format(ui=ui.url).encode()
    browser.get(url.replace("/attack.html", "/embed.html"))
    # the load event waits for the images, script, stylesheet and frame; the fetch settles on its answer
    wait_until(lambda: len(browser.execute_script("return window.results") or []) >= 2, 30, what="the loads ran")
    assert source.reports == 0
    assert httpx.get(ui.url + "/api/v1/report?format=json").status_code == 200 and source.reports == 1  # not broken

    browser.find_element("id", "link").click()
    wait_until(lambda: browser.find_elements("css selector", "#find-table"), 60, what="findings page rendered by Dash")
    assert browser.current_url.startswith(ui.url)
