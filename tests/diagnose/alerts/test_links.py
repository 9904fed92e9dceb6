"""Every sink's link back to meshscope opens that very finding in the real UI.

Fingerprints hold '|', '#', '/' and spaces (`MS1004|VirtualService bookinfo/reviews#spec/http[0]/route[0]|`):
unquoted, a '#' cut the link at the YAML path and a '|' ended a Slack `<url|text>` link early, and the
parameter the links used (`fingerprint=`) was not the one the findings page reads (`fp=`).
"""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from dashboard.sample import bookinfo_snapshot
from dashboard.snapshot_source import SnapshotSource
from diagnose.alerts import alertmanager, amwebhook, slack
from diagnose.alerts.config import ReceiverConfig
from diagnose.alerts.grouping import Grouper
from diagnose.alerts.model import Alert
from tests.util import wait_until


def _links(finding: dict, external_url: str) -> dict[str, str]:
    """The link each sink renders for an alert of `finding`."""
    rec = ReceiverConfig(name="r", url="http://127.0.0.1:1/h", group_wait=0)
    alert = Alert(fingerprint=finding["fingerprint"], labels={"alertname": finding["code"], "code": finding["code"],
                                                                "severity": finding["severity"]},
                  annotations={"summary": finding["message"]}, starts_at=1000.0)
    g = Grouper([rec])
    g.observe([alert], 1000.0)
    n = g.flush(1000.0)[0]
    text = json.dumps(slack.payload(n, external_url))
    slack_link = re.search(r"<([^<>|]*)\|open in meshscope>", json.loads(text)["blocks"][1]["text"]["text"]).group(1)
    return {"slack": slack_link,
            "amwebhook": json.loads(amwebhook.render(n, rec, 1000.0, external_url).body)["alerts"][0]["generatorURL"],
            "alertmanager": alertmanager.payload(n, rec, 1000.0, external_url)[0]["generatorURL"]}


def test_links_carry_the_whole_fingerprint():
    for f in SnapshotSource(bookinfo_snapshot()).findings({}):
        for sink, link in _links(f, "http://127.0.0.1:8050").items():
            parts = urlsplit(link)
            assert parts.path == "/findings" and not parts.fragment, (sink, link)
            assert parse_qs(parts.query) == {"fp": [f["fingerprint"]]}, (sink, link)


@pytest.mark.browser
def test_the_link_opens_that_finding_in_the_ui(browser, ui_server):
    source = SnapshotSource(bookinfo_snapshot())
    ui = ui_server(source)
    finding = next(f for f in source.findings({}) if "#" in f["fingerprint"] and "|" in f["fingerprint"])
    links = _links(finding, ui.url)
    assert len(set(links.values())) == 1, links
    browser.get(links["slack"])
    wait_until(lambda: finding["message"][:40] in (browser.find_element("id", "find-detail").text
                                                   if browser.find_elements("id", "find-detail") else ""),
               60, what="the finding's detail shown")
