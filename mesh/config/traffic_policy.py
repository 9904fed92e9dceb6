"""Which DestinationRule traffic policy applies to one cluster (port, subset): Istio's rule, walked once.

The control plane (what Envoy gets), the diagnosis rules (which mTLS mode a client uses), the correlator (which
field caused a 503) and the what-if replay all ask this question; they share this walker so they cannot disagree.

Istio's rule, as its cluster builder applies it (pilot/pkg/networking/util MergeSubsetTrafficPolicy and
GetPortLevelTrafficPolicy, read at istio/istio 86c9f01):

1. Port level replaces, it does not merge. Within one trafficPolicy, the *first* `portLevelSettings` entry whose
   `port.number` equals the cluster's port stands in for that whole policy: its four sections (connectionPool,
   loadBalancer, outlierDetection, tls) are taken as they are, a section it leaves out falls back to Envoy's
   default, not to the policy's own section, and the policy's tunnel, proxyProtocol and retryBudget are dropped.
   Entries are matched by number only (Istio's PortSelector has no name any more); with no port known nothing
   matches.
2. A subset's policy (after step 1 on it) overrides the rule's top-level policy (after step 1 on that) section by
   section, each section whole: a subset `connectionPool` with only `http` loses the top level's `tcp`.
3. When the subset's policy matched a port-level entry, its four sections replace the top level's even where they
   are absent (back to defaults); the top level's tunnel, proxyProtocol and retryBudget survive.
4. A subset name the rule does not define, or the default cluster (no subset), takes the top level alone.
5. A tls section in force decides the client's TLS even without a mode: the mode's zero value is DISABLE
   (`tls_mode`); only when no tls section is in force does auto mTLS choose.

Which DestinationRule a client takes (`rule_search`) follows Istio's PushContext.destinationRule: the client's
namespace, then the service's, then the root namespace, the most specific host within the first that has one; a
client in the root namespace (a gateway in istio-system) first takes only the root's private rules, its exported
ones after the service's.

Malformed shapes (a list where a mapping belongs, a section that is not a mapping) read as absent: the schema rules
report them; nothing here raises. Each section comes back with the YAML path it was taken from, so a finding can
point at the one field in force.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mesh.config.hosts import export_to
from mesh.config.model import ConfigObject

#: Sections a port-level entry carries (and so replaces wholesale).
PORT_SECTIONS = ("connectionPool", "loadBalancer", "outlierDetection", "tls")
#: Sections only a whole trafficPolicy carries.
POLICY_ONLY_SECTIONS = ("tunnel", "proxyProtocol", "retryBudget")
SECTIONS = PORT_SECTIONS + POLICY_ONLY_SECTIONS


@dataclass(frozen=True)
class Setting:
    """One section in force: its value and the YAML path it came from (e.g. spec/trafficPolicy/tls)."""

    path: str
    value: dict[str, Any]


def port_number(value: Any) -> int | None:
    """A port number as Istio reads `port.number`: an integer (a string of digits tolerated); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _sections(policy: dict[str, Any], base: str, names: tuple[str, ...]) -> dict[str, Setting]:
    return {k: Setting(f"{base}/{k}", policy[k]) for k in names if isinstance(policy.get(k), dict)}


def _for_port(policy: Any, base: str, port: int | None) -> tuple[dict[str, Setting], bool]:
    """Step 1: the sections one trafficPolicy gives a port, and whether a port-level entry stood in for it."""
    policy = _dict(policy)
    if port is not None:
        for j, entry in enumerate(_list(policy.get("portLevelSettings"))):
            entry = _dict(entry)
            if port_number(_dict(entry.get("port")).get("number")) == port:
                return _sections(entry, f"{base}/portLevelSettings[{j}]", PORT_SECTIONS), True
    return _sections(policy, base, SECTIONS), False


def subset_index(spec: Any, subset: str | None) -> int | None:
    """Index of the subset named `subset` in a DestinationRule spec (the first, as Istio keeps one per name)."""
    if not subset:
        return None
    for k, s in enumerate(_list(_dict(spec).get("subsets"))):
        if isinstance(s, dict) and s.get("name") == subset:
            return k
    return None


def effective(spec: Any, port: int | str | None, subset: str | None = None) -> dict[str, Setting]:
    """Section name -> Setting in force for the cluster (`port`, `subset`) of a DestinationRule `spec`.

    `port` None means no port is known: port-level entries are then not applied. Absent sections are left out."""
    spec = _dict(spec)
    number = port_number(port) if port is not None else None
    merged, _ = _for_port(spec.get("trafficPolicy"), "spec/trafficPolicy", number)
    k = subset_index(spec, subset)
    if k is None:
        return merged
    base = f"spec/subsets[{k}]/trafficPolicy"
    own, port_level = _for_port(_dict(spec["subsets"][k]).get("trafficPolicy"), base, number)
    out = dict(merged)
    for name in SECTIONS:
        if name in own:
            out[name] = own[name]
        elif port_level and name in PORT_SECTIONS:
            out.pop(name, None)
    return out


def effective_policy(spec: Any, port: int | str | None, subset: str | None = None) -> dict[str, Any]:
    """The effective trafficPolicy for one cluster as a plain mapping (section -> value), no portLevelSettings."""
    return {name: s.value for name, s in effective(spec, port, subset).items()}


def tls_mode(tls: Any) -> str | None:
    """The client TLS mode a tls section in force sets, upper-cased. None when no section is in force: auto mTLS
    decides. A section without a mode (`tls: {sni: ...}`, `tls: {}`) is DISABLE: Istio reads the enum's zero value
    and sends plaintext, it does not fall back to auto mTLS. A mode that is not a string reads as absent."""
    if not isinstance(tls, dict):
        return None
    mode = tls.get("mode")
    if mode is None or (isinstance(mode, str) and not mode.strip()):
        return "DISABLE"
    return mode.strip().upper() if isinstance(mode, str) else None


def places(spec: Any, section: str) -> Iterator[Setting]:
    """Every place a DestinationRule sets `section`, whatever the cluster: each subset's policy (its port-level
    entries first), then the top level's, in that order. For callers that do not know the cluster."""
    spec = _dict(spec)
    levels = [(f"spec/subsets[{k}]/trafficPolicy", _dict(s).get("trafficPolicy"))
              for k, s in enumerate(_list(spec.get("subsets"))) if isinstance(s, dict)]
    levels.append(("spec/trafficPolicy", spec.get("trafficPolicy")))
    for base, policy in levels:
        policy = _dict(policy)
        if section in PORT_SECTIONS:
            for j, entry in enumerate(_list(policy.get("portLevelSettings"))):
                value = _dict(entry).get(section)
                if isinstance(value, dict):
                    yield Setting(f"{base}/portLevelSettings[{j}]/{section}", value)
        if isinstance(policy.get(section), dict):
            yield Setting(f"{base}/{section}", policy[section])


def private_only(dr: ConfigObject) -> bool:
    """Whether a DestinationRule is exported to its own namespace alone (exportTo "." or that namespace; a rule
    with a workloadSelector always is)."""
    if _dict(dr.spec).get("workloadSelector") is not None:
        return True
    exports = export_to(dr)
    return len(exports) == 1 and exports[0] in (".", dr.namespace)


def rule_search(client_namespace: str | None, service_namespace: str | None,
                root_namespace: str) -> list[tuple[str | None, bool]]:
    """(namespace, private rules only) in the order Istio searches for a client's DestinationRule; the first step
    holding a rule (visible to the client) for the host decides. A client in the root namespace starts with the
    root's private rules: its exported, mesh-wide ones must not shadow the service namespace's own rule."""
    steps: list[tuple[str | None, bool]] = [(root_namespace, True) if client_namespace == root_namespace else
                                            (client_namespace, False)]
    if service_namespace:
        steps.append((service_namespace, False))
    steps.append((root_namespace, False))
    return list(dict.fromkeys(steps))


def selects(dr: ConfigObject, client_namespace: str | None, client_labels: dict[str, str] | None) -> bool | None:
    """For a DestinationRule with a `workloadSelector`: whether it applies to this client (its own namespace's
    workloads it selects; Istio never exports such a rule). None for a rule without one (it applies to all)."""
    sel = _dict(dr.spec).get("workloadSelector")
    if sel is None:
        return None
    labels = _dict(_dict(sel).get("matchLabels"))
    return client_labels is not None and dr.namespace == client_namespace and \
        all(client_labels.get(str(k)) == str(v) for k, v in labels.items())
