"""The mesh-wide settings rules depend on (a small, typed slice of Istio's MeshConfig)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mesh.config.yamlnodes import parse_documents

OUTBOUND_POLICIES = ("ALLOW_ANY", "REGISTRY_ONLY")


@dataclass
class MeshConfig:
    """Istio's defaults unless a mesh config file says otherwise."""

    root_namespace: str = "istio-system"
    enable_auto_mtls: bool = True
    outbound_traffic_policy: str = "ALLOW_ANY"
    trust_domain: str = "cluster.local"
    trust_domain_aliases: list[str] = field(default_factory=list)
    domain_suffix: str = "cluster.local"
    ingress_controller_mode: str = "STRICT"
    ingress_service: str = "istio-ingressgateway"
    ingress_selector: str = "ingressgateway"
    # DNS capture + auto allocation give ServiceEntries addresses (proxyMetadata ISTIO_META_DNS_*).
    dns_capture: bool = False
    dns_auto_allocate: bool = False
    raw: dict[str, Any] = field(default_factory=dict)


class MeshConfigError(ValueError):
    """A mesh config file that cannot be used; the message names the file (and line)."""


def mesh_config_from_dict(data: dict[str, Any], where: str = "mesh config") -> MeshConfig:
    """Merge a MeshConfig fragment (Istio's camelCase field names) over the defaults."""
    if "data" in data and isinstance(data.get("data"), dict) and data.get("kind") == "ConfigMap":
        text = data["data"].get("mesh")
        if not isinstance(text, str):
            raise MeshConfigError(f"{where}: ConfigMap has no data.mesh")
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise MeshConfigError(f"{where}: data.mesh is not a mapping")
    mc = MeshConfig(raw=dict(data))

    def get(key: str, typ: type, default: Any) -> Any:
        value = data.get(key, default)
        if value is None:
            return default
        if not isinstance(value, typ):
            raise MeshConfigError(f"{where}: {key} must be a {typ.__name__}, got {type(value).__name__}")
        return value

    mc.root_namespace = get("rootNamespace", str, mc.root_namespace)
    mc.enable_auto_mtls = get("enableAutoMtls", bool, mc.enable_auto_mtls)
    mc.trust_domain = get("trustDomain", str, mc.trust_domain)
    mc.trust_domain_aliases = list(get("trustDomainAliases", list, []))
    mc.ingress_controller_mode = str(get("ingressControllerMode", str, mc.ingress_controller_mode)).upper()
    mc.ingress_service = get("ingressService", str, mc.ingress_service)
    mc.ingress_selector = get("ingressSelector", str, mc.ingress_selector)
    otp = get("outboundTrafficPolicy", dict, {})
    mode = otp.get("mode", mc.outbound_traffic_policy)
    if not isinstance(mode, str) or mode.upper() not in OUTBOUND_POLICIES:
        raise MeshConfigError(f"{where}: outboundTrafficPolicy.mode must be one of {', '.join(OUTBOUND_POLICIES)}")
    mc.outbound_traffic_policy = mode.upper()
    default_config = get("defaultConfig", dict, {})
    meta = default_config.get("proxyMetadata") or {}
    if not isinstance(meta, dict):
        raise MeshConfigError(f"{where}: defaultConfig.proxyMetadata must be a mapping")
    mc.dns_capture = str(meta.get("ISTIO_META_DNS_CAPTURE", "")).lower() == "true"
    mc.dns_auto_allocate = str(meta.get("ISTIO_META_DNS_AUTO_ALLOCATE", "")).lower() == "true"
    return mc


def load_mesh_config(path: str | Path) -> MeshConfig:
    """Read a MeshConfig fragment (or Istio's `istio` ConfigMap) from a YAML file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise MeshConfigError(f"{p}: cannot read mesh config: {getattr(exc, 'strerror', None) or exc}") from exc
    docs, errors = parse_documents(text)
    if errors:
        raise MeshConfigError(f"{p}:{errors[0].line}: not valid YAML: {errors[0]}")
    docs = [d for d in docs if d.data is not None]
    if not docs:
        return MeshConfig()
    if not isinstance(docs[0].data, dict):
        raise MeshConfigError(f"{p}:{docs[0].line}: mesh config must be a mapping")
    return mesh_config_from_dict(docs[0].data, str(p))
