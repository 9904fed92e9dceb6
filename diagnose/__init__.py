"""Findings with evidence: config rules, runtime rules, SLO burn rates, alerts and reports."""
