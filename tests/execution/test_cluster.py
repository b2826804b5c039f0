"""The emulated cluster listens on loopback only, and its drivers join it there."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import ray

from wattroute.execution.cluster import is_loopback

LISTEN = "0A"  # TCP state in /proc/<pid>/net/tcp*


def _descendants(root: int) -> set[int]:
    """Processes started, directly or not, by ``root``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as /proc/net/tcp{,6} prints it: 32-bit words in host byte order."""
    words = [int(hex_address[i : i + 8], 16) for i in range(0, len(hex_address), 8)]
    packed = b"".join(struct.pack("=I", w) for w in words)
    return ipaddress.ip_address(packed)


def _listening(pid: int) -> list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]]:
    """The (address, port) of every TCP socket ``pid`` listens on."""
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):  # closed meanwhile
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
        tables = [Path(f"/proc/{pid}/net/{name}").read_text() for name in ("tcp", "tcp6")]
    except OSError:  # the process is gone
        return []
    out = []
    for table in tables:
        for line in table.splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == LISTEN and inode in inodes:
                host, port = local.split(":")
                out.append((_address(host), int(port, 16)))
    return out


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:  # gone meanwhile
        return ""


def _on_loopback(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


class _Pid:
    def pid(self) -> int:
        return os.getpid()


_Probe = ray.remote(num_cpus=0)(_Pid)


@pytest.mark.system
def test_nodes_and_driver_are_on_loopback(ray_sites):
    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert len(nodes) == 1 + len(ray_sites.sites)  # the head and a node per site
    assert {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}
    assert ray.util.get_node_ip_address() == "127.0.0.1"
    assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")


@pytest.mark.system
def test_every_port_the_cluster_listens_on_is_on_loopback(ray_sites):
    site = ray_sites.sites[0][0]
    probe: Any = _Probe.options(resources={f"site:{site}": 1}).remote()
    try:
        worker = ray.get(probe.pid.remote(), timeout=60)
        me = os.getpid()
        sockets = {pid: _listening(pid) for pid in _descendants(me) | {me}}
        names = {_name(pid) for pid, found in sockets.items() if found}
        # Not vacuous: the GCS, the raylets, a worker and the driver were seen listening.
        assert {"gcs_server", "raylet"} <= names
        assert sockets[worker]
        assert sockets[me]
        exposed = {
            (pid, str(address), port)
            for pid, found in sockets.items()
            for address, port in found
            if not _on_loopback(address)
        }
        assert not exposed
    finally:
        ray.kill(probe)


@pytest.mark.system
def test_a_process_started_later_joins_through_loopback(ray_sites):
    """What an API worker process does: join the cluster at the address it was given."""
    address = ray.get_runtime_context().gcs_address
    code = textwrap.dedent(
        f"""
        import ray
        ray.init(address={address!r}, namespace="wattroute-probe", log_to_driver=False)
        print(ray.util.get_node_ip_address())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "127.0.0.1"


def test_the_socket_check_reads_what_the_kernel_lists():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert (ipaddress.ip_address("127.0.0.1"), port) in _listening(os.getpid())
    assert _on_loopback(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert _on_loopback(ipaddress.ip_address("::1"))
    for exposed in ("0.0.0.0", "::", "::ffff:0.0.0.0", "::ffff:192.0.2.2", "192.0.2.2"):
        assert not _on_loopback(ipaddress.ip_address(exposed))


def test_loopback_addresses():
    assert is_loopback("127.0.0.1")
    assert is_loopback("localhost")
    assert is_loopback("::1")
    assert not is_loopback("192.0.2.2")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("not an address")
