"""The bundled mesh rotates its sidecars' access logs through each Envoy's admin unix socket."""
from __future__ import annotations

import json

from tests.mesh.evidence import get
from tests.util import wait_until


def test_bundled_mesh_rotates_a_sidecar_log_and_envoy_reopens_it(bundled_mesh):
    assert bundled_mesh.log_rotator is not None  # on by default in files mode
    entry = next(e for e in bundled_mesh._rotated_logs() if e.path.name == "bookinfo.details-v1.log")
    wait_until(lambda: entry.path.exists() and entry.path.stat().st_size > 0, timeout=30, what="details-v1 log written")
    rotated = entry.path.with_name(entry.path.name + ".1")
    assert bundled_mesh.log_rotator.rotate(entry)  # renamed, and Envoy answered POST /reopen_logs with 200
    assert rotated.exists()
    marker = "ms-test-rotation"
    assert get(bundled_mesh.gateway_url + "/productpage", {"user-agent": marker})[0] == 200

    def reopened():
        if not entry.path.exists():
            return None
        return any(json.loads(line).get("user_agent") == marker for line in entry.path.read_text().splitlines() if line)
    wait_until(reopened, timeout=30, what="Envoy writing to a new file at the old name")
    assert marker not in rotated.read_text()
