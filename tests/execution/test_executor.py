"""The Ray executor on three emulated sites: placement, moves with checkpoints, lost nodes,
shedding, replicas."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
import ray

from tests.builders import scenario, site
from wattroute.execution.checkpoints import CheckpointStore
from wattroute.execution.context import JobContext
from wattroute.execution.examples import train_logistic_regression
from wattroute.execution.executor import RayExecutor, RayOptions
from wattroute.model.arrays import FleetSignals, FleetStatic, ServiceArrays
from wattroute.runtime.executor import Allocation
from wattroute.runtime.jobs import load_table
from wattroute.runtime.records import JobRecord

# Runs on the emulated Ray cluster.
pytestmark = pytest.mark.system

TRAIN = "wattroute.execution.examples:train_logistic_regression"
START = pd.Timestamp("2023-06-01", tz="UTC")


def _fleet():
    return scenario(
        [site(n, accelerators=4, idle_kw=0.1, latitude=40 + i) for i, n in enumerate("abc")]
    )


def _job(i: int, **args) -> JobRecord:
    return JobRecord(
        id=f"job{i}",
        tenant="t",
        name=f"j{i}",
        submitted_at=START,
        deadline=START + pd.Timedelta(hours=20),
        work_accelerator_hours=2.0,
        min_accelerators=1,
        max_accelerators=2,
        function=TRAIN,
        args=args,
    )


class Harness:
    """Ticks by hand: an allocation per call, as the controller would send."""

    def __init__(self, tmp_path, records):
        sc = _fleet()
        self.sc = sc
        self.records = records
        self.executor = RayExecutor(
            FleetStatic.from_scenario(sc),
            FleetSignals.from_scenario(sc),
            sc.step_h,
            RayOptions(checkpoint_root=str(tmp_path / "checkpoints"), stop_timeout_s=20),
        )
        self.table, self.ids = load_table(records, ("a", "b", "c"), START)
        self.step = 0

    def allocation(self, sites: list[int], acc: list[int] | None = None) -> Allocation:
        n = len(self.records)
        return Allocation(
            site=np.array(sites),
            accelerators=np.array(acc or [2] * n),
            routing=(),
            battery_kw=None,
            genset_kw=None,
            accelerator_limit=np.full(3, 4.0),
            code={r.id: (r.function, r.args) for r in self.records},
        )

    def tick(self, sites, acc=None):
        report = self.executor.execute(
            self.step, self.table, self.ids, self.allocation(sites, acc), ()
        )
        self.step += 1
        return report

    def wait_for(self, predicate, timeout=60.0, sites=None, every=0.2):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sites is not None:
                self.tick(sites)
            if predicate():
                return True
            time.sleep(every)
        return False

    def transitions(self, what):
        return [(t.job_id, t.site) for t in self.executor.transitions if t.what == what]


@pytest.fixture
def harness(ray_sites, tmp_path):
    made = []

    def make(records):
        h = Harness(tmp_path, records)
        made.append(h)
        return h

    yield make
    for h in made:
        h.executor.close()


def _node_of_site(site_name: str) -> str:
    for node in ray.nodes():
        if node["Alive"] and f"site:{site_name}" in node["Resources"]:
            return node["NodeID"]
    raise AssertionError(f"no live node for {site_name}")


def test_jobs_run_where_the_plan_puts_them_and_complete(harness):
    h = harness([_job(1, epochs=6), _job(2, epochs=6)])
    assert h.wait_for(lambda: bool(h.table.finished.all()), sites=[0, 2])
    assert sorted(h.transitions("started")) == [("job1", "a"), ("job2", "c")]
    result = CheckpointStore(h.executor.checkpoints.root).result("job1")
    assert result is not None
    assert result["epochs"] == 6
    assert h.table.done.tolist() == [2.0, 2.0]


def test_actors_are_pinned_to_the_site_nodes(harness):
    h = harness([_job(1, epochs=400, seconds_per_epoch=0.05)])
    h.tick([1])
    assert h.wait_for(lambda: bool(h.transitions("started")))
    run = h.executor._runs["job1"]
    node = ray.get(
        run.actor.__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id())
    )
    assert node == _node_of_site("b")


def test_a_moved_job_resumes_from_its_checkpoint_and_ends_as_if_never_moved(harness, tmp_path):
    args: dict[str, Any] = {"epochs": 40, "seconds_per_epoch": 0.05, "checkpoint_every": 5}
    alone = JobContext("j", "a", 2, 1, CheckpointStore(str(tmp_path / "alone")), threading.Event())
    uninterrupted = train_logistic_regression(alone, **{**args, "seconds_per_epoch": 0.0})
    h = harness([_job(1, **args)])
    h.tick([0])
    assert h.wait_for(lambda: h.executor._progress.get("job1", 0) >= 0.25)
    h.tick([1])  # move a -> b
    assert h.wait_for(lambda: ("job1", "b") in h.transitions("started"))
    assert h.wait_for(lambda: h.executor._progress.get("job1", 0) >= 0.5)
    h.tick([-1])  # pause
    assert h.wait_for(lambda: "job1" not in h.executor._runs)
    assert h.wait_for(lambda: bool(h.table.finished.all()), sites=[2])  # resume at c
    result = CheckpointStore(h.executor.checkpoints.root).result("job1")
    assert result is not None
    assert np.array_equal(result["weights"], uninterrupted["weights"])
    stops = h.transitions("stopped")
    assert [s for _, s in stops] == ["a", "b"]
    meta = CheckpointStore(h.executor.checkpoints.root).meta("job1")
    assert meta is not None
    assert meta.attempt == 3


def test_a_lost_site_is_reported_and_its_job_resumes_elsewhere(harness, ray_sites):
    h = harness([_job(1, epochs=200, seconds_per_epoch=0.05, checkpoint_every=5)])
    h.tick([1])
    assert h.wait_for(lambda: h.executor._progress.get("job1", 0) >= 0.05)
    saved = h.executor._progress["job1"]
    ray_sites.black_out("b")
    try:
        assert h.wait_for(lambda: "b" in h.executor.unavailable_sites(), timeout=30)
        assert h.wait_for(lambda: ("job1", "b") in h.transitions("lost"), timeout=30)
        # The plan moves it to c; it resumes from the last checkpoint, not from zero.
        assert h.wait_for(lambda: ("job1", "c") in h.transitions("started"), sites=[2])
        assert h.executor._progress["job1"] >= saved
    finally:
        ray_sites.restore("b")
    assert h.wait_for(lambda: "b" not in h.executor.unavailable_sites(), timeout=30)


def test_a_site_that_just_lost_work_gets_none_new_for_a_while(harness):
    h = harness([_job(1, epochs=400, seconds_per_epoch=0.05, checkpoint_every=5)])
    h.executor.options.suspect_s = 2.0
    h.tick([0])
    assert h.wait_for(lambda: ("job1", "a") in h.transitions("started"))
    # Its actor dies (as when its node dies, before Ray has noticed the node is gone).
    ray.kill(h.executor._runs["job1"].actor)
    assert h.wait_for(lambda: ("job1", "a") in h.transitions("lost"), timeout=30)

    def at(what: str) -> list[float]:
        return [t.at for t in h.executor.transitions if t.what == what]

    # The plan still wants it at a: it waits out the suspicion, then starts there again.
    assert h.wait_for(lambda: len(at("placed")) == 2, sites=[0], timeout=30)
    assert at("placed")[1] - at("lost")[0] >= 2.0 - 0.05
    assert "a" not in h.executor.unavailable_sites()  # a lost job alone does not lose a site


def test_shedding_stops_the_job_and_the_measured_load_falls(harness):
    h = harness(
        [_job(1, epochs=400, seconds_per_epoch=0.05), _job(2, epochs=400, seconds_per_epoch=0.05)]
    )
    h.tick([0, 0])
    assert h.wait_for(lambda: len(h.transitions("started")) == 2)
    pue = np.ones(3)
    before = h.executor.load_kw_now(pue)[0]
    assert before == pytest.approx(0.1 * 4 + 0.9 * 4)
    asked = time.monotonic()
    h.executor.enact(h.table, h.ids, h.allocation([0, -1]), ())
    after = 0.1 * 4 + 0.9 * 2  # idle power of the four, busy power of the two still running
    assert h.wait_for(lambda: h.executor.load_kw_now(pue)[0] <= after + 1e-9, timeout=30)
    assert time.monotonic() - asked < 5.0
    assert ("job2", "a") in h.transitions("stopped")  # checkpointed and returned, not killed


def test_replicas_fit_in_what_a_power_short_site_keeps_powered(harness):
    h = harness([])
    service = ServiceArrays(
        name="vision",
        points=("p",),
        rate_rps=np.array([[90.0]]),
        rtt_ms=np.zeros((1, 3)),
        feasible=np.ones((1, 3), bool),
        latency_slo_ms=100.0,
        service_time_ms=5.0,
        replica_throughput_rps=30.0,
        accelerators_per_replica=1,
    )
    routing = (np.array([[1.0, 0.0, 0.0]]),)  # all 90 requests/s to a: three replicas

    def allocation(limit_a: float) -> Allocation:
        return dataclasses.replace(
            h.allocation([]), routing=routing, accelerator_limit=np.array([limit_a, 4.0, 4.0])
        )

    h.executor.enact(h.table, h.ids, allocation(4.0), (service,))
    assert h.wait_for(lambda: len(h.executor._replicas.get(("vision", "a"), [])) == 3)
    # Power at a falls: the decision powers one accelerator there; two replicas go.
    h.executor.enact(h.table, h.ids, allocation(1.0), (service,))
    assert h.wait_for(lambda: len(h.executor._replicas.get(("vision", "a"), [])) == 1)
    assert h.executor.load_kw_now(np.ones(3))[0] <= 1.0 + 1e-9  # 1 kW busy, none idle
