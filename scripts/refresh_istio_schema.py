"""Rewrite mesh/config/schema/istio-crds.json from Istio's crd-all.gen.yaml (see SOURCE.md beside it).

Usage: python scripts/refresh_istio_schema.py PATH/TO/crd-all.gen.yaml
Keeps, per kind, the group, the served versions and the `spec` schema without descriptions.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

OUT = Path(__file__).resolve().parent.parent / "mesh" / "config" / "schema" / "istio-crds.json"
SKIP_KINDS = {"TrafficExtension"}


def _trim(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _trim(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_trim(v) for v in node]
    return node


def main(path: str) -> None:
    out: dict[str, Any] = {}
    for doc in yaml.safe_load_all(Path(path).read_text()):
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        kind = doc["spec"]["names"]["kind"]
        if kind in SKIP_KINDS:
            continue
        versions = [v for v in doc["spec"]["versions"] if v.get("served")]
        root = versions[0]["schema"]["openAPIV3Schema"]
        out[kind] = {"group": doc["spec"]["group"], "versions": [v["name"] for v in versions],
                     "spec": _trim(root["properties"]["spec"]), "required_spec": "spec" in (root.get("required") or [])}
    OUT.write_text(json.dumps(out, separators=(",", ":"), sort_keys=True))
    print(f"wrote {len(out)} kinds to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
