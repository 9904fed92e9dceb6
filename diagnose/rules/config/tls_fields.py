"""Reading PeerAuthentication and DestinationRule TLS fields as Istio does, tolerating bad shapes.

Malformed values (a list where a mapping belongs, a number for a mode) read as
absent, so a broken object never crashes a rule; the schema rules report it.
The scope helpers keep Kiali's vocabulary: a DestinationRule is mesh-wide when
its host is ``*.local`` (or ``*.<domain suffix>``) and namespace-wide when its
host is ``*.<ns>.svc.<domain suffix>``.
"""
from __future__ import annotations

from typing import Any

from mesh.config import ConfigObject, Snapshot
from mesh.config.traffic_policy import tls_mode

STRICT, PERMISSIVE, DISABLE = "STRICT", "PERMISSIVE", "DISABLE"
ISTIO_MUTUAL, MUTUAL, SIMPLE = "ISTIO_MUTUAL", "MUTUAL", "SIMPLE"
#: DestinationRule TLS modes under which a client originates some kind of TLS.
SENDS_TLS = frozenset({ISTIO_MUTUAL, MUTUAL, SIMPLE})
#: Modes whose connections a STRICT Istio server rejects (no Istio client certificate).
NOT_ISTIO_MTLS = frozenset({DISABLE, SIMPLE})

MESH, NAMESPACE, WORKLOAD, PORT, HOST = "mesh", "namespace", "workload", "port", "host"


# -- small readers over spec dicts (tolerant: bad types read as absent) ------------------------
def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def selector_of(obj: ConfigObject, key: str = "selector") -> dict[str, str] | None:
    """`spec.<key>.matchLabels` (PeerAuthentication, AuthorizationPolicy, ...); None when absent or empty."""
    labels = as_dict(as_dict(obj.spec.get(key)).get("matchLabels"))
    return {str(k): str(v) for k, v in labels.items()} or None


def mode_of(value: Any) -> str | None:
    """A TLS / mTLS mode as Istio normalises it; None for absent or UNSET (= inherit)."""
    if not isinstance(value, str) or not value.strip():
        return None
    mode = value.strip().upper()
    return None if mode == "UNSET" else mode


def pa_mode(pa: ConfigObject) -> str | None:
    return mode_of(as_dict(pa.spec.get("mtls")).get("mode"))


def pa_port_modes(pa: ConfigObject) -> dict[str, str]:
    """`portLevelMtls` as {port number as text: mode} (UNSET entries dropped)."""
    out: dict[str, str] = {}
    for port, setting in as_dict(pa.spec.get("portLevelMtls")).items():
        mode = mode_of(as_dict(setting).get("mode"))
        if mode:
            out[str(port)] = mode
    return out


def is_mesh_pa(pa: ConfigObject, snap: Snapshot) -> bool:
    return pa.namespace == snap.mesh_config.root_namespace and selector_of(pa) is None


def is_namespace_pa(pa: ConfigObject, snap: Snapshot) -> bool:
    return pa.namespace != snap.mesh_config.root_namespace and selector_of(pa) is None


def enables_mtls(pa: ConfigObject) -> bool:
    """Kiali's test: a selectorless PeerAuthentication in STRICT or PERMISSIVE mode."""
    return selector_of(pa) is None and pa_mode(pa) in (STRICT, PERMISSIVE)


# -- DestinationRule TLS ---------------------------------------------------------------------
def dr_tls(dr: ConfigObject) -> dict[str, Any] | None:
    """The top-level `trafficPolicy.tls` block, or None."""
    tls = as_dict(dr.spec.get("trafficPolicy")).get("tls")
    return tls if isinstance(tls, dict) else None


def dr_mode(dr: ConfigObject) -> str | None:
    """The top-level TLS mode; a tls block without a mode is DISABLE (Istio's enum default, `tls_mode`)."""
    return mode_of(tls_mode(dr_tls(dr)))


def dr_port_modes(dr: ConfigObject) -> list[tuple[int, str, str]]:
    """(index, port number as text, mode) for every portLevelSettings entry with a TLS mode."""
    out = []
    pls = as_dict(dr.spec.get("trafficPolicy")).get("portLevelSettings")
    for i, setting in enumerate(pls if isinstance(pls, list) else []):
        setting = as_dict(setting)
        mode = mode_of(tls_mode(setting.get("tls")))
        number = as_dict(setting.get("port")).get("number")
        if mode and number is not None:
            out.append((i, str(number), mode))
    return out


def has_tls_settings(dr: ConfigObject) -> bool:
    return dr_tls(dr) is not None or bool(dr_port_modes(dr))


def dr_scope(dr: ConfigObject, snap: Snapshot) -> tuple[str, str | None]:
    """(MESH, None), (NAMESPACE, ns) or (HOST, fqdn) for a DestinationRule's host."""
    host = dr.spec.get("host")
    host = host if isinstance(host, str) else ""
    suffix = snap.mesh_config.domain_suffix
    if host in ("*.local", f"*.{suffix}"):
        return MESH, None
    tail = f".svc.{suffix}"
    if host.startswith("*.") and host.endswith(tail) and "." not in host[2:-len(tail)] and len(host) > 2 + len(tail):
        return NAMESPACE, host[2:-len(tail)]
    return HOST, snap.fqdn(host, dr.namespace)
