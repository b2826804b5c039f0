"""A Ray cluster on this machine that emulates a fleet: one Ray node per site.

Each site's node carries the custom resource ``site:<name>`` sized to the site's accelerators,
a few CPUs and a small object store; a head node carries no site. Taking a site's node away
(:meth:`LocalSites.black_out`) is what a blackout looks like to the executor; adding it back
(:meth:`LocalSites.restore`) is the site rejoining. Everything it starts, :meth:`stop` stops:
the processes of the nodes it added, and nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import ray
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
    """

    sites: list[tuple[str, int]]
    cpus_per_site: int = 1
    object_store_mb: int = 80
    failure_detection_s: float = 2.0
    cluster: Cluster | None = None
    nodes: dict[str, Any] = field(default_factory=dict)

    def start(self) -> str:
        """Start the head and one node per site, connect this process; the address."""
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        self.cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 1,
                "object_store_memory": self.object_store_mb * MB,
                "include_dashboard": False,
                "_system_config": {
                    "health_check_period_ms": int(self.failure_detection_s * 250),
                    "health_check_timeout_ms": int(self.failure_detection_s * 250),
                    "health_check_failure_threshold": 4,
                },
            },
        )
        for name, _ in self.sites:
            self._add(name)
        ray.init(address=self.cluster.address, namespace="wattroute", log_to_driver=False)
        self.cluster.wait_for_nodes()
        return str(self.cluster.address)

    def _add(self, name: str) -> None:
        assert self.cluster is not None
        count = dict(self.sites)[name]
        self.nodes[name] = self.cluster.add_node(
            num_cpus=self.cpus_per_site,
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


def sites_of(fleet_names: Iterable[str], accelerators: Iterable[int]) -> list[tuple[str, int]]:
    return [(n, int(a)) for n, a in zip(fleet_names, accelerators, strict=True)]
