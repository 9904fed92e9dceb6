"""Helpers to read the evidence a change leaves: new access-log records of one sidecar, counters."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path


class LogCursor:
    """Reads the JSON access-log records a sidecar wrote after the cursor was created."""

    def __init__(self, mesh, workload: str):
        self.path: Path = next(p for p in mesh.access_log_paths() if p.name.endswith(f".{workload}.log"))
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def records(self) -> list[dict]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # ignore a line still being written
        return [json.loads(line) for line in data[:end].splitlines() if line.strip()]

    def matching(self, **fields) -> list[dict]:
        return [r for r in self.records() if all(r.get(k) == v for k, v in fields.items())]


def get(url: str, headers: dict | None = None, timeout: float = 15) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def counter(mesh, workload: str, name: str) -> float:
    """A plain Envoy stat (e.g. `cluster.outbound|9080||x.upstream_rq_pending_overflow`), 0 when absent."""
    text = mesh.admin(workload, "/stats?filter=" + urllib.request.quote(f"^{name}$"))[1]
    for line in text.splitlines():
        k, _, v = line.partition(": ")
        if k == name:
            return float(v)
    return 0.0
