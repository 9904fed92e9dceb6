"""Test helper: start/stop/restart the sink_server process and read what it received."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.util import free_port, wait_until

REPO = Path(__file__).resolve().parents[3]


class Sink:
    def __init__(self, workdir: Path, secret: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.log = workdir / f"sink-{self.port}.jsonl"
        self.secret = secret
        self.proc: subprocess.Popen | None = None

    def start(self, plan: str = "", hang_seconds: float = 60) -> "Sink":
        cmd = [sys.executable, "-m", "tests.diagnose.alerts.sink_server", "--port", str(self.port),
               "--log", str(self.log), "--plan", plan, "--hang-seconds", str(hang_seconds)]
        if self.secret:
            cmd += ["--secret", self.secret]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._listening, timeout=30, what=f"sink on port {self.port}")
        return self

    def _listening(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, "sink exited"
        try:
            httpx.get(f"http://127.0.0.1:{self.port}/", timeout=0.5)
        except httpx.HTTPError:
            return False
        return True

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def requests(self) -> list[dict]:
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:  # a line torn by killing the sink mid-write
                continue
        return out

    def delivered(self) -> list[dict]:
        """Requests the sink answered with 2xx (a hang answered 200 only after the sender gave up, so it is excluded)."""
        return [r for r in self.requests() if r["action"] != "hang" and 200 <= int(r["action"].split(":")[0]) < 300]
