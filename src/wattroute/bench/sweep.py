"""A bench's runs as Ray tasks: the same scenarios x policies, spread over a Ray cluster.

``wattroute bench --ray ADDRESS`` sends each run (one policy, or the oracle, on one scenario)
to a cluster as a task and gathers the results in the order a local bench produces them, so
the tables, summaries and report are the same as the local run's (every simulation is
deterministic; only the wall-clock fields, such as decision times, differ). ``auto`` starts a
cluster on this machine for the bench — every port on loopback, one CPU per core, a small
object store — and stops it afterwards; any other address is an existing cluster's, as
``ray.init(address=...)`` takes it (``HOST:6379``, ``ray://HOST:10001``), whose nodes must
have wattroute installed.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Sequence
from typing import Any

from wattroute.bench.runner import RunProgress, ScenarioResult, collect, run_one
from wattroute.errors import InputError, WattrouteError
from wattroute.model import Scenario
from wattroute.signals.forecast import get_forecaster

AUTO = "auto"
OBJECT_STORE_MB = 200
"""Object store of the cluster ``auto`` starts, MiB (a run's record of a two-week, five-site
scenario at 5 minutes is a few MiB)."""


@contextlib.contextmanager
def connected(address: str) -> Iterator[None]:
    """This process connected to the cluster at ``address`` (``auto``: one started here for
    the duration), disconnected (and the cluster started here stopped) on leaving.

    Raises
    ------
    InputError
        If the cluster cannot be reached (``--ray``).
    """
    import ray

    from wattroute.execution.cluster import LocalSites, is_loopback, loopback_kept

    if address == AUTO:
        local = LocalSites(sites=[], head_cpus=os.cpu_count() or 1, object_store_mb=OBJECT_STORE_MB)
        try:
            local.start()
            yield
        finally:
            local.stop()
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    fix = (
        "start the cluster (ray start --head) and give its address, or use --ray auto to "
        "start one on this machine for the bench."
    )
    host = _reachable(address, fix)  # Ray itself retries an address for a minute or more
    # A cluster on loopback is joined on loopback (Ray would swap in the machine's network
    # address); a Ray client (ray://) connects through its proxy alone.
    loopback = is_loopback(host) and not address.startswith("ray://")
    if loopback:
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    try:
        with loopback_kept() if loopback else contextlib.nullcontext():
            ray.init(
                address=address,
                log_to_driver=False,
                _node_ip_address=host if loopback else None,
            )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise InputError("--ray", f"no Ray cluster answers at {address!r} ({exc}).", fix) from None
    try:
        yield
    finally:
        ray.shutdown()


def _reachable(address: str, fix: str, timeout_s: float = 5.0) -> str:
    """Check that something listens at ``address`` (``HOST:PORT`` or ``ray://HOST:PORT``);
    its host.

    Raises
    ------
    InputError
        If the address is not ``HOST:PORT``, or nothing answers there within ``timeout_s``.
    """
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(
            "--ray", f"{address!r} is not a cluster address (HOST:PORT or ray://HOST:PORT).", fix
        )
    host = host.strip("[]")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise InputError(
            "--ray", f"no Ray cluster answers at {address!r} ({exc.strerror or exc}).", fix
        ) from None
    return host


def _task() -> Any:
    """The remote function of one run (built on first use: importing Ray is slow)."""
    import ray

    @ray.remote(num_cpus=1)
    def run(scenario: Scenario, policy: str, forecaster: str, oracle_step_h: float) -> Any:
        return run_one(scenario, policy, get_forecaster(forecaster), oracle_step_h)

    return run


def run_on_ray(
    scenarios: Sequence[Scenario],
    policies: Sequence[str],
    forecaster: str,
    oracle_step_h: float,
    address: str,
    tracker: RunProgress | None = None,
) -> list[ScenarioResult]:
    """Every policy on every scenario as a Ray task on the cluster at ``address``; the results
    as :func:`~wattroute.bench.runner.run_scenario` gives them, scenario by scenario.
    ``tracker`` is told of each run as it ends (start and finish at once: runs overlap)."""
    import ray

    with connected(address):
        task = _task()
        pending: dict[Any, tuple[int, int]] = {}
        for i, scenario in enumerate(scenarios):
            ref = ray.put(scenario)
            for j, policy in enumerate(policies):
                pending[task.remote(ref, policy, forecaster, oracle_step_h)] = (i, j)
        done: dict[tuple[int, int], Any] = {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            i, j = pending.pop(ready[0])
            try:
                run = ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:
                if isinstance(exc.cause, WattrouteError):
                    raise exc.cause from None  # bad input: said as a local run says it
                raise
            done[i, j] = run
            if tracker:
                tracker.start(scenarios[i].name, run.policy, scenarios[i].n_steps)
                tracker.finish(scenarios[i].name, run.policy, run.wall_s)
        return [
            collect(scenario, [done[i, j] for j in range(len(policies))])
            for i, scenario in enumerate(scenarios)
        ]


def without_wall_clock(value: Any) -> Any:
    """A summary (or any JSON-like value) without the fields that measure wall-clock time:
    ``decision_s``, and every key ending in ``_s`` or holding ``_s_`` (``wall_s``,
    ``solve_s``, ``solve_s_p99``). What is left is the same on Ray as in one process."""
    if isinstance(value, dict):
        return {
            k: without_wall_clock(v)
            for k, v in value.items()
            if not (isinstance(k, str) and (k.endswith("_s") or "_s_" in k))
        }
    if isinstance(value, list | tuple):
        return [without_wall_clock(v) for v in value]
    return value
