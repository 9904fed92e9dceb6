"""Envoy's admin API is private to the mesh's user; the stats port serves only what a scraper needs.

Real sidecars of the shared mesh: the admin API listens on a 0600 unix socket, and the
TCP port that Prometheus and meshscope scrape answers GET /stats/prometheus and GET /ready
and nothing else (no /quitquitquit, no config dump), as Istio keeps 15090 apart from 15000.
"""
from __future__ import annotations

import http.client
import os
import stat
from urllib.parse import urlsplit

import pytest

from mesh.dataplane.envoy import exchange

pytestmark = pytest.mark.e2e

W = "details-v1"


def _call(url: str, method: str, path: str) -> tuple[int, str]:
    u = urlsplit(url)
    return exchange(http.client.HTTPConnection(u.hostname, u.port, timeout=10), method, path)


def _listening_tcp_ports(pid: int) -> set[int]:
    """Ports of the TCP sockets process `pid` listens on (from /proc, IPv4 and IPv6)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.read().splitlines()[1:]:
                cols = row.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A = LISTEN
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def test_admin_api_is_a_private_unix_socket(bundled_mesh):
    sock = bundled_mesh.admin_socket(bundled_mesh.workload(W))
    st = sock.stat()
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert st.st_uid == os.getuid()
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    status, body = bundled_mesh.admin(W, "/server_info")
    assert status == 200 and '"state": "LIVE"' in body


def test_stats_port_serves_stats_and_readiness_only(bundled_mesh):
    url = bundled_mesh.stats_url(W)
    status, text = _call(url, "GET", "/stats/prometheus")
    assert status == 200 and "istio_requests_total{" in text
    assert _call(url, "GET", "/ready") == (200, "LIVE\n")
    pid = bundled_mesh.pids()[f"bookinfo.{W}"]
    for method, path in (("POST", "/quitquitquit"), ("POST", "/healthcheck/fail"), ("GET", "/config_dump"),
                         ("GET", "/stats"), ("GET", "/certs"), ("POST", "/logging?level=trace"),
                         ("POST", "/stats/prometheus"), ("GET", "/stats/prometheus/../../quitquitquit")):
        status, body = _call(url, method, path)
        assert status == 404, (method, path, status, body[:200])
    # the sidecar is untouched: same process, still ready
    assert bundled_mesh.pids()[f"bookinfo.{W}"] == pid
    assert bundled_mesh.admin(W, "/ready") == (200, "LIVE\n")


def test_no_sidecar_listens_on_a_tcp_port_it_was_not_given(bundled_mesh):
    for w in bundled_mesh.workloads:
        pid = bundled_mesh.pids()[f"{w.namespace}.{w.name}"]
        given = {w.stats_port, w.outbound_port, *w.inbound_ports.values()}
        if w.is_gateway:
            given.add(urlsplit(bundled_mesh.gateway_url).port)
        assert _listening_tcp_ports(pid) <= given, (w.name, sorted(_listening_tcp_ports(pid) - given))
