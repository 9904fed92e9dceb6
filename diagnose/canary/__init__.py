"""Canary verdicts: each newer version of a split service against its stable one, from the mesh's own series."""
from diagnose.canary.verdict import Verdict, evaluate

__all__ = ["Verdict", "evaluate"]
