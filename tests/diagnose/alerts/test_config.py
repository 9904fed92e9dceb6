"""Receivers YAML: valid files load, every problem names file:line and field, good receivers survive bad ones."""
import pytest

from diagnose.alerts.config import load_alerts_config, parse_alerts_config, parse_duration

GOOD = """\
external_url: http://127.0.0.1:8050/
receivers:
  - name: oncall
    url: http://127.0.0.1:9000/hook
    format: webhook
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    categories: [slo, runtime]
    severities: [error]
    group_by: [alertname, namespace]
    group_wait: 10s
    group_interval: 2m
    repeat_interval: 3h
  - name: am
    url: http://127.0.0.1:9093
    format: alertmanager
"""


def test_good_file_loads_with_format_defaults():
    loaded = parse_alerts_config(GOOD, "alerts.yaml")
    assert loaded.problems == []
    cfg = loaded.config
    assert cfg.external_url == "http://127.0.0.1:8050"
    oncall, am = cfg.receivers
    assert (oncall.group_wait, oncall.group_interval, oncall.repeat_interval) == (10, 120, 3 * 3600)
    assert oncall.accepts("slo", "error") and not oncall.accepts("route", "error") and not oncall.accepts("slo", "warning")
    # Alertmanager groups by itself: no batching on our side, frequent re-posts before its resolve_timeout
    assert am.group_by == ["..."] and am.group_wait == 0 and am.repeat_interval < 300
    assert am.accepts("route", "info")


def test_bad_receiver_is_reported_with_line_and_field_and_others_still_load():
    text = GOOD + """\
  - name: broken
    url: ftp://example
    format: pager
    group_wait: soon
    severities: [critical]
    colour: red
"""
    loaded = parse_alerts_config(text, "alerts.yaml")
    assert [r.name for r in loaded.config.receivers] == ["oncall", "am"]
    msgs = {p.field: p for p in loaded.problems}
    assert msgs["receivers[2].url"].line == 17
    assert msgs["receivers[2].format"].line == 18 and "pager" in msgs["receivers[2].format"].message
    assert msgs["receivers[2].group_wait"].line == 19
    assert "critical" in msgs["receivers[2].severities"].message
    assert msgs["receivers[2].colour"].message.startswith("unknown field")
    assert all(str(p).startswith("alerts.yaml:") for p in loaded.problems)


def test_invalid_yaml_and_missing_file_are_problems_not_exceptions(tmp_path):
    loaded = parse_alerts_config("receivers:\n  - name: [unclosed\n", "x.yaml")
    assert loaded.config.receivers == [] and "invalid YAML" in loaded.problems[0].message
    assert loaded.problems[0].line >= 2
    missing = load_alerts_config(tmp_path / "nope.yaml")
    assert missing.config.receivers == [] and "cannot read" in missing.problems[0].message


def test_secret_must_decode_and_duplicate_names_are_refused(monkeypatch):
    text = """\
receivers:
  - {name: a, url: "http://127.0.0.1:1/", secret: "whsec_***notbase64"}
  - {name: b, url: "http://127.0.0.1:1/", secret_env: MESHSCOPE_TEST_SECRET}
  - {name: b, url: "http://127.0.0.1:2/"}
"""
    monkeypatch.setenv("MESHSCOPE_TEST_SECRET", "plain-secret")
    loaded = parse_alerts_config(text, "f.yaml")
    assert [r.name for r in loaded.config.receivers] == ["b"]
    assert loaded.config.receivers[0].secret == "plain-secret"
    fields = [p.field for p in loaded.problems]
    assert "receivers[0].secret" in fields and "receivers[2].name" in fields


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("5m", 300), ("4h", 14400), ("1d", 86400), ("250ms", 0.25), (12, 12)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "-5s", "5 weeks", True])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)
