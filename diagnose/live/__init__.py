"""The live diagnoser: runtime rules, config findings and SLOs re-evaluated every few seconds."""
from diagnose.live.loop import LiveDiagnoser, suppress_runtime
from diagnose.live.sources import LiveSources
from diagnose.live.tracker import FindingTracker

__all__ = ["FindingTracker", "LiveDiagnoser", "LiveSources", "suppress_runtime"]
