"""Helpers to read the evidence a change leaves: new access-log records of one sidecar, counters."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path


class LogCursor:
    """Reads the JSON access-log records a sidecar wrote after the cursor was created.

    Follows the bundled mesh's log rotation (`x.log` -> `x.log.1` -> `x.log.2`): the cursor
    remembers the file by inode, so records written before a rotation are read from the
    renamed file and the rest from the files that came after it.
    """

    def __init__(self, mesh, workload: str):
        self.path: Path = next(p for p in mesh.access_log_paths() if p.name.endswith(f".{workload}.log"))
        st = self.path.stat() if self.path.exists() else None
        self.offset = st.st_size if st else 0
        self.inode = st.st_ino if st else None

    def _generations(self) -> list[Path]:
        """The log's files, oldest first: x.log.N ... x.log.1, x.log."""
        rotated = sorted(self.path.parent.glob(self.path.name + ".*"),
                         key=lambda p: int(p.suffix[1:]) if p.suffix[1:].isdigit() else -1, reverse=True)
        return [p for p in rotated if p.suffix[1:].isdigit()] + [self.path]

    def records(self) -> list[dict]:
        files = [p for p in self._generations() if p.exists()]
        inodes = [p.stat().st_ino for p in files]
        start = inodes.index(self.inode) if self.inode in inodes else None
        data = b""
        for i, p in enumerate(files):
            if start is not None and i < start:
                continue
            with open(p, "rb") as f:
                if start is not None and i == start:
                    f.seek(self.offset)
                chunk = f.read()
            if p != self.path:  # a rotated file is complete
                data += chunk if chunk.endswith(b"\n") or not chunk else chunk + b"\n"
            else:
                data += chunk
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
