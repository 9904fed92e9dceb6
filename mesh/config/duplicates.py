"""One definition per object: the last of several with the same kind, namespace and name wins.

`kubectl apply -f` applies documents in load order, each replacing the previous
object of the same identity, so the cluster keeps the last definition. Every
reader of config (the analyzer, the control plane, the UI) must see that same
one, and the analyzer must say the others are ignored; this module decides both.

Load order is what `mesh.config.loader.load_paths` produces, the order kubectl
uses: paths in the order given, the files of a folder walked recursively in
lexical order of each directory's entries, the documents of a file top to
bottom, and the items of a `kind: List` in list order.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mesh.config.kinds import type_name
from mesh.config.model import ConfigObject

Identity = tuple[str, str | None, str]


def identity(obj: ConfigObject) -> Identity:
    """(type name, namespace, name): what the API server keys an object by.

    The type name (not the bare kind) keeps Istio's Gateway and the Gateway API's
    Gateway of the same name apart: they are different resources.
    """
    return (type_name(obj.kind, obj.api_version), obj.namespace, obj.name)


@dataclass(frozen=True)
class Duplicate:
    """An identity defined more than once; `definitions` in load order, the last one evaluated."""

    definitions: tuple[ConfigObject, ...]

    @property
    def evaluated(self) -> ConfigObject:
        return self.definitions[-1]

    @property
    def ignored(self) -> tuple[ConfigObject, ...]:
        return self.definitions[:-1]

    @property
    def identity(self) -> Identity:
        return identity(self.evaluated)

    @property
    def locations(self) -> list[str]:
        """file:line of every definition, in load order."""
        return [str(o.source) if o.source else "<no source>" for o in self.definitions]

    def summary(self) -> str:
        """One line for a CLI or API warning; the analyzer's MS0011 says the same with more context."""
        where = self.locations
        return f"{self.evaluated.ref} is defined {len(where)} times ({', '.join(where)}); the last ({where[-1]}) is used"


def last_wins(objects: Iterable[ConfigObject]) -> tuple[list[ConfigObject], list[Duplicate]]:
    """The objects with each identity once (its last definition), and every identity defined twice or more.

    An object keeps the position of its identity's first definition, as a dict
    update (and the control plane's `with_applied`) would.
    """
    kept: dict[Identity, ConfigObject] = {}
    repeats: dict[Identity, list[ConfigObject]] = {}
    for obj in objects:
        key = identity(obj)
        previous = kept.get(key)
        if previous is not None:
            repeats.setdefault(key, [previous]).append(obj)
        kept[key] = obj
    return list(kept.values()), [Duplicate(tuple(defs)) for defs in repeats.values()]
