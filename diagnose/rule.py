"""The two-member contract every config rule implements: metadata and one `analyze(ctx)`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from diagnose.context import Context


@dataclass(frozen=True)
class Metadata:
    """What `--list-rules` prints and what the runner uses to skip a rule.

    `name` reads ``family.Check`` (e.g. ``virtualservice.DestinationHosts``);
    `inputs` are the kinds (type names, plus the pseudo kinds ``Workload`` and
    ``MeshConfig``) the rule reads; the runner skips the rule when none is
    present. `codes` are the catalog codes it reports.
    """

    name: str
    description: str
    inputs: tuple[str, ...]
    codes: tuple[str, ...]


@runtime_checkable
class Rule(Protocol):
    metadata: Metadata

    def analyze(self, ctx: Context) -> None: ...
