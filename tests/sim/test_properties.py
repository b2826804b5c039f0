"""Properties of whole runs over random fleets and workloads (hypothesis), guard switched on."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import Battery, DemandPoint, Genset, job, scenario, service, site
from wattroute.policies import get_policy
from wattroute.sim import SimulationOptions, simulate, summarize
from wattroute.sim.simulator import UNSERVED_TOLERANCE_KW

QUARTER = pd.Timedelta("15min")


@st.composite
def fleets(draw):
    n = 96  # a day at 15 minutes
    n_sites = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    sites = []
    for i in range(n_sites):
        has_battery = draw(st.booleans())
        grid = draw(st.sampled_from(["unlimited", "limited", "islanded"]))
        sites.append(
            site(
                name=f"s{i}",
                n=n,
                accelerators=draw(st.integers(1, 12)),
                busy_kw=draw(st.floats(0.3, 1.5)),
                idle_kw=draw(st.floats(0.0, 0.2)),
                pue=draw(st.floats(1.0, 1.6)),
                price=rng.uniform(-20, 200, n),
                carbon=rng.uniform(0, 800, n),
                import_limit_kw=math.inf if grid == "unlimited" else draw(st.floats(0, 10)),
                export_limit_kw=draw(st.floats(0, 5)),
                solar_kw=draw(st.floats(0, 20)),
                solar_profile=np.clip(
                    np.sin(np.linspace(0, 2 * np.pi, n)) + rng.normal(0, 0.1, n), 0, 1
                ),
                battery=Battery(
                    draw(st.floats(1, 50)),
                    draw(st.floats(1, 10)),
                    draw(st.floats(1, 10)),
                    draw(st.floats(0.6, 1.0)),
                    0.1,
                    0.95,
                    0.5,
                )
                if has_battery
                else None,
                genset=Genset(draw(st.floats(1, 10)), 0.3, 700) if draw(st.booleans()) else None,
                latitude=40.0 + i,
                longitude=-100.0 + i,
                step=QUARTER,
                grid=grid != "islanded",
            )
        )
    jobs = []
    for j in range(draw(st.integers(0, 6))):
        max_acc = draw(st.integers(1, 4))
        arrival = draw(st.floats(0, 12))
        work = draw(st.floats(0.1, 10))
        jobs.append(
            job(
                f"j{j}",
                arrival,
                work,
                max_acc,
                min(24.0, arrival + work / max_acc + draw(st.floats(0.5, 8))),
                checkpoint_h=draw(st.floats(0, 0.5)),
            )
        )
    services = []
    if draw(st.booleans()):
        services = [
            service(
                "v", "p", rng.uniform(0, 30, n), slo_ms=draw(st.floats(10, 60)), throughput=10.0
            )
        ]
    return scenario(
        sites,
        n=n,
        jobs=jobs,
        services=services,
        points=[DemandPoint("p", 40.2, -100.1)],
        carbon_price=draw(st.floats(0, 200)),
        step=QUARTER,
    )


@pytest.mark.parametrize("policy", ["agnostic", "greedy"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=fleets())
def test_every_run_balances_energy_respects_capacity_and_accounts_for_all_work(policy, sc):
    record = simulate(sc, get_policy(policy), SimulationOptions(check_energy_balance=True))
    s = summarize(record)
    e = s["energy_kwh"]
    supply = e["grid"] + e["solar"] + e["wind"] + e["genset"] + e["battery_discharge"]
    assert supply == pytest.approx(
        e["load"] + e["battery_charge"] + e["export"], rel=1e-9, abs=1e-9
    )
    # Repairs leave nothing unserved (idle accelerators are powered down first), up to the
    # tolerance below which a block goes on: at any site and step.
    assert (record.sites.data["unserved_kw"] <= UNSERVED_TOLERANCE_KW).all()
    # Never more accelerators busy than a site has, or than are powered.
    used = record.sites.data["batch_accelerators"] + record.sites.data["inference_accelerators"]
    assert (used <= record.sites.data["powered_accelerators"] + 1e-4).all()
    assert (
        record.sites.data["powered_accelerators"]
        <= np.array([x.accelerators.count for x in sc.sites]) + 1e-6
    ).all()
    # Work is conserved: done + undone = submitted, and misses are counted.
    total = sum(j.work_accelerator_hours for j in sc.jobs)
    assert s["batch"]["work_accelerator_hours"] <= total + 1e-9
    assert s["batch"]["completed"] + s["batch"]["deadline_misses"] >= len(sc.jobs)
    i = s["inference"]
    assert i["served_within_slo"] + i["served_late"] + i["dropped"] == pytest.approx(
        i["requests"], rel=1e-9, abs=1e-6
    )
