"""The inference gateway: requests go only to replicas that are ready."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import ray

from tests.builders import DemandPoint, scenario, site
from wattroute.execution.actors import NAMESPACE, RemoteReplica
from wattroute.execution.executor import replica_name
from wattroute.execution.gateway import Gateway
from wattroute.runtime.records import ServiceRecord

# Runs on the emulated Ray cluster.
pytestmark = pytest.mark.system


def test_a_replica_still_starting_gets_no_request(ray_sites):
    sc = scenario(
        [site("a", latitude=40.0), site("b", latitude=40.1)],
        points=[DemandPoint("p", 40.0, -100.0)],
    )
    # The plan routes everything to a, whose replica cannot start (it asks for more of the
    # site than there is: it stays pending, as one waiting for a slow model or a freed
    # accelerator would); b's replica is ready.
    stuck: Any = RemoteReplica.options(
        name=replica_name("t/svc", "a", 0),
        namespace=NAMESPACE,
        num_cpus=0,
        resources={"site:a": 1000},
    ).remote("svc", "a", None)
    ready: Any = RemoteReplica.options(
        name=replica_name("t/svc", "b", 0), namespace=NAMESPACE, num_cpus=0, resources={"site:b": 1}
    ).remote("svc", "b", None)
    try:
        ray.get(ready.ready.remote(), timeout=60)
        gateway = Gateway(sc, seed=1)
        record = ServiceRecord("svc", "t", 100.0, 5.0, 50.0, 1, {"p": 1.0})
        for _ in range(5):
            started = time.perf_counter()
            request = gateway.infer(record, "p", {"a": 1.0, "b": 0.0}, [1.0])
            answer = asyncio.run(asyncio.wait_for(request, timeout=10))
            assert answer.site == "b"
            assert time.perf_counter() - started < 5.0
            time.sleep(0.2)
    finally:
        ray.kill(stuck)
        ray.kill(ready)
