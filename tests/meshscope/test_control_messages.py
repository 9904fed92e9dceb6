"""`meshscope apply/delete/scenario` messages name the real cause: size limit, recorded URL, refused vs absent mesh."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mesh.control_api import MAX_BODY, ControlClient, ControlError, url_path

VS = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ghost-%d, namespace: bookinfo}
spec:
  hosts: [ghost]
  http:
  - route:
    - destination: {host: ghost}
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MESHSCOPE_CONTROL_TOKEN"}
    return subprocess.run([sys.executable, "-m", "meshscope", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env=env)


def test_an_oversize_apply_is_refused_before_validation_naming_the_limit(tmp_path):
    big = tmp_path / "big.yaml"
    with big.open("w") as f:
        n = 0
        while f.tell() <= MAX_BODY:
            f.write("---\n" + VS % n)
            n += 1
    proc = cli("apply", "-f", str(big), "--control", "http://127.0.0.1:9", cwd=tmp_path)
    assert proc.returncode == 1
    assert "refused before validation" in proc.stdout and "4 MiB request limit" in proc.stdout, proc.stdout
    assert "start one" not in proc.stdout and "Traceback" not in proc.stderr


def test_the_client_refuses_an_oversize_body_before_sending():
    with pytest.raises(ControlError, match="over the control API's 4 MiB request limit"):
        ControlClient("http://127.0.0.1:9", token="t").apply("#" * (MAX_BODY + 1), "x.yaml")


def _resetting_server() -> tuple[socket.socket, int]:
    """Accepts connections and drops them unanswered: a mesh that is there but does not complete the request."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def loop() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()  # RST
    threading.Thread(target=loop, daemon=True).start()
    return srv, srv.getsockname()[1]


def test_a_running_but_failing_mesh_is_not_told_to_start_one():
    srv, port = _resetting_server()
    try:
        with pytest.raises(ControlError) as exc:
            ControlClient(f"http://127.0.0.1:{port}", token="t", timeout=5).status()
        assert "start one" not in str(exc.value) and f"127.0.0.1:{port}" in str(exc.value)
    finally:
        srv.close()


def test_nothing_listening_points_at_the_recorded_url(tmp_path):
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    url_path(tmp_path).parent.mkdir(parents=True)
    url_path(tmp_path).write_text("http://127.0.0.1:15999\n")
    with pytest.raises(ControlError) as exc:
        ControlClient(f"http://127.0.0.1:{port}", token="t", data_dir=tmp_path, timeout=5).status()
    msg = str(exc.value)
    assert "connection refused" in msg and "--control http://127.0.0.1:15999" in msg and "start one" in msg


@pytest.mark.e2e
def test_apply_finds_a_mesh_on_a_non_default_port_through_the_data_dir(bundled_mesh, tmp_path):
    """The shared mesh's control API is on a free port; only the data dir says where."""
    assert bundled_mesh.control.port != 15080
    mesh_dir = tmp_path / "data" / "mesh"
    mesh_dir.mkdir(parents=True)
    (mesh_dir / "control.token").write_text(bundled_mesh.control_token + "\n")
    (mesh_dir / "control.url").write_text(f"http://127.0.0.1:{bundled_mesh.control.port}\n")
    ghost = tmp_path / "ghost.yaml"
    ghost.write_text(VS % 0)
    proc = cli("delete", "-f", str(ghost), "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    # the mesh answered (it has no such object), which it can only do if the URL and token were found
    assert "no bundled mesh answers" not in proc.stdout and "ghost-0" in proc.stdout, proc.stdout
