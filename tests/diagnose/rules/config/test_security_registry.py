"""Guard tests for the mTLS/security rules: registered, described, reading only what they declare."""
from __future__ import annotations

import functools

import pytest

from diagnose.analysis import run_rule
from diagnose.catalog import CATALOG
from diagnose.rules import ALL_RULES
from diagnose.rules.config import (authorization, authorization_refs, destinationrule_tls, gateway_tls,
                                   peerauthentication, workload_mtls)
from diagnose.rules.config.snapshot_rule import SnapshotRule
from mesh.config import MeshConfig, Snapshot, load_paths
from tests.corpus import guard_sources

MODULES = (authorization, authorization_refs, destinationrule_tls, gateway_tls, peerauthentication, workload_mtls)


def security_rules() -> list[SnapshotRule]:
    out = []
    for mod in MODULES:
        for value in vars(mod).values():
            items = value if isinstance(value, list) else [value]
            out.extend(v for v in items if isinstance(v, SnapshotRule))
    return out


RULES = security_rules()


@functools.cache
def corpus_objects() -> tuple:
    return tuple(load_paths([f for group in guard_sources() for f in group]).objects)


def test_every_security_rule_is_registered_once():
    registered = [r for r in ALL_RULES if isinstance(r, SnapshotRule)]
    assert sorted(r.metadata.name for r in registered) == sorted(r.metadata.name for r in RULES)
    assert len({r.metadata.name for r in ALL_RULES}) == len(ALL_RULES)


def test_every_security_code_is_reported_by_a_rule():
    declared = {c for r in RULES for c in r.metadata.codes}
    ms2 = {c for c in CATALOG if c.startswith("MS2")}
    assert declared == ms2
    for code in ms2:
        entry = CATALOG[code]
        assert entry.category in ("mtls", "security") and entry.remediation, code


@pytest.mark.parametrize("rule", RULES, ids=[r.metadata.name for r in RULES])
def test_rule_metadata_and_reads(rule):
    md = rule.metadata
    assert md.description and md.inputs and md.codes
    assert all(c in CATALOG for c in md.codes)
    objects = corpus_objects()
    for auto in (True, False):
        ctx = run_rule(rule, Snapshot(objects, MeshConfig(enable_auto_mtls=auto)))
        assert ctx.reads <= set(md.inputs), f"{md.name} reads undeclared kinds {sorted(ctx.reads - set(md.inputs))}"
        assert not [f for f in ctx.findings if f.code == "MS0099"], "rule crashed on the corpora"
        assert {f.code for f in ctx.findings} <= set(md.codes)
