"""The JSON report validates against its documented schema and loads back as the same snapshot."""
import json

import jsonschema

from diagnose.reports import Snapshot, render
from diagnose.reports.json import schema

from tests.diagnose.reports.sample import sample_snapshot


def test_validates_against_documented_schema_and_round_trips():
    s = sample_snapshot()
    doc = json.loads(render(s, "json"))
    jsonschema.Draft202012Validator.check_schema(schema())
    jsonschema.validate(doc, schema(), cls=jsonschema.Draft202012Validator)
    assert [f["code"] for f in doc["findings"]][:3] == ["MS3002", "MS4001", "MS3010"]
    back = Snapshot.from_dict(doc)
    assert back.mesh == s.mesh and back.window == s.window
    assert sorted(f["fingerprint"] for f in back.findings) == sorted(f["fingerprint"] for f in s.findings)


def test_schema_rejects_a_finding_without_code():
    doc = json.loads(render(sample_snapshot(), "json"))
    del doc["findings"][0]["code"]
    errors = list(jsonschema.Draft202012Validator(schema()).iter_errors(doc))
    assert any("code" in e.message for e in errors)
