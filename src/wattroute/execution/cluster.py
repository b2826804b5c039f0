"""A Ray cluster on this machine that emulates a fleet: one Ray node per site.

Each site's node carries the custom resource ``site:<name>`` sized to the site's accelerators,
a few CPUs and a small object store; a head node carries no site. Taking a site's node away
(:meth:`LocalSites.black_out`) is what a blackout looks like to the executor; adding it back
(:meth:`LocalSites.restore`) is the site rejoining. Everything it starts, :meth:`stop` stops:
the processes of the nodes it added, and nothing else.

Every node is started with ``node_ip_address`` (127.0.0.1 by default) and the driver connects
through it. With a loopback address, every TCP port the cluster's processes listen on is on
loopback only: the GCS, each raylet (node manager and object manager), the runtime env agent,
the workers' and the driver's gRPC servers and the autoscaler monitor's metrics server; with
``ray[default]`` installed also the dashboard agent's gRPC (metrics agent), HTTP and metrics
export ports. The dashboard process serves no HTTP (``include_dashboard=False``) and no Ray
client server is started. Another address (one of this machine's) makes the nodes reachable
from other hosts on it; Ray then binds its gRPC servers to all interfaces.

Ray's Python side replaces a loopback address (127.0.0.1, ``localhost``, ``::1``) in the
address a process not yet connected is given by the machine's network address, so nothing
could join loopback-only nodes. This process keeps the address as given while it connects;
processes it starts afterwards (API workers that join the cluster) inherit
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, with which Ray resolves loopback to itself. Ray's
usage reporting (an HTTPS request from the head node, a minute after it starts) is off unless
``RAY_USAGE_STATS_ENABLED`` says otherwise.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import ray
from ray._private import services
from ray.cluster_utils import Cluster

from wattroute.execution.actors import site_resource

MB = 1024 * 1024


@dataclass
class LocalSites:
    """The emulated cluster.

    Parameters
    ----------
    sites
        (name, accelerators) per site.
    cpus_per_site
        CPUs each site's node offers (work asks for none: the site resource decides).
    object_store_mb
        Object store of each node, MiB.
    failure_detection_s
        About how long Ray takes to declare a node that stopped answering dead (its health
        checks: every quarter of this, four misses), seconds. Ray's default is about 15 s.
    node_ip_address
        The address every node of this cluster is started with and listens on, and that the
        driver connects through (an IP address of this machine). 127.0.0.1 keeps every port
        on loopback.
    head_cpus
        CPUs the head node offers (tasks that need a CPU run there: a bench's runs).
    """

    sites: list[tuple[str, int]]
    cpus_per_site: int = 1
    object_store_mb: int = 80
    failure_detection_s: float = 2.0
    node_ip_address: str = "127.0.0.1"
    head_cpus: int = 1
    cluster: Cluster | None = None
    nodes: dict[str, Any] = field(default_factory=dict)

    def start(self) -> str:
        """Start the head and one node per site, connect this process; the address."""
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if is_loopback(self.node_ip_address):
            os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        self.cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": self.head_cpus,
                "object_store_memory": self.object_store_mb * MB,
                "include_dashboard": False,
                "node_ip_address": self.node_ip_address,
                "_system_config": {
                    "health_check_period_ms": int(self.failure_detection_s * 250),
                    "health_check_timeout_ms": int(self.failure_detection_s * 250),
                    "health_check_failure_threshold": 4,
                },
            },
        )
        for name, _ in self.sites:
            self._add(name)
        with loopback_kept():
            ray.init(
                address=self.cluster.address,
                namespace="wattroute",
                log_to_driver=False,
                _node_ip_address=self.node_ip_address,
            )
        self.cluster.wait_for_nodes()
        return str(self.cluster.address)

    def _add(self, name: str) -> None:
        assert self.cluster is not None
        count = dict(self.sites)[name]
        self.nodes[name] = self.cluster.add_node(
            num_cpus=self.cpus_per_site,
            node_ip_address=self.node_ip_address,
            object_store_memory=self.object_store_mb * MB,
            resources={site_resource(name): float(count)},
        )

    def black_out(self, name: str) -> None:
        """Take the site's node away, as a power failure would."""
        assert self.cluster is not None
        node = self.nodes.pop(name)
        self.cluster.remove_node(node, allow_graceful=False)

    def restore(self, name: str) -> None:
        """Bring the site back with a fresh node."""
        self._add(name)
        assert self.cluster is not None
        self.cluster.wait_for_nodes()

    def stop(self) -> None:
        """Disconnect and stop every node this cluster started."""
        if ray.is_initialized():
            ray.shutdown()
        if self.cluster is not None:
            self.cluster.shutdown()  # type: ignore[no-untyped-call]
            self.cluster = None
        self.nodes.clear()


def is_loopback(address: str) -> bool:
    """Whether ``address`` (an IP address or ``localhost``) is this host's loopback."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def loopback_kept() -> Iterator[None]:
    """While ``ray.init`` runs in this process, keep loopback addresses (the cluster's, the
    node's) as given rather than replaced by the machine's network address."""
    resolve = services.resolve_ip_for_localhost
    services.resolve_ip_for_localhost = lambda host: host
    try:
        yield
    finally:
        services.resolve_ip_for_localhost = resolve


def sites_of(fleet_names: Iterable[str], accelerators: Iterable[int]) -> list[tuple[str, int]]:
    return [(n, int(a)) for n, a in zip(fleet_names, accelerators, strict=True)]
