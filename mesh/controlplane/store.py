"""The control plane's config: the current set of objects, changed like `kubectl apply/delete`.

Changes are copy-on-write: `with_applied` / `with_deleted` return a new list, so
the caller can translate and push the candidate and keep the old list as the last
good config if the push is refused.
"""
from __future__ import annotations

from collections.abc import Iterable

from mesh.config.duplicates import Identity as Key
from mesh.config.duplicates import identity as key_of
from mesh.config.model import ConfigObject


def with_applied(current: list[ConfigObject], changes: Iterable[ConfigObject]) -> list[ConfigObject]:
    """`current` with each change created or replaced (same type, namespace and name: `mesh.config.identity`, so an Istio
    Gateway and a Gateway API Gateway of one name stay apart), order kept."""
    out = {key_of(o): o for o in current}
    for o in changes:
        out[key_of(o)] = o
    return list(out.values())


def with_deleted(current: list[ConfigObject], gone: Iterable[ConfigObject]) -> tuple[list[ConfigObject], list[Key]]:
    """`current` without the objects named in `gone`; also returns the keys that did not exist."""
    keys = {key_of(o) for o in gone}
    present = {key_of(o) for o in current}
    return [o for o in current if key_of(o) not in keys], sorted(k for k in keys if k not in present)
