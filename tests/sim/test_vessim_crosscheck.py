"""Cross-check of site energy accounting against Vessim on the same microgrid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.vessim_twin import TwinBattery, run_vessim
from tests.builders import SHARED_DATA, DemandPoint, needs_shared_data, scenario, service, site
from wattroute.iotools import read_solcast
from wattroute.model import Battery
from wattroute.policies import get_policy
from wattroute.sim import SimulationOptions, simulate
from wattroute.sim.record import SiteRecorder

WEEK = 7 * 288


def _load_profile(n: int) -> np.ndarray:
    """A facility load with a daily cycle and deterministic noise, kW."""
    t = np.arange(n)
    rng = np.random.default_rng(42)
    return 30.0 + 12.0 * np.sin(2 * np.pi * (t % 288) / 288 - 1.0) ** 2 + rng.uniform(0, 4, n)


@needs_shared_data()
@pytest.mark.parametrize(("city", "export_kw"), [("Berlin", 5.0), ("Sydney", 0.0)])
def test_grid_battery_and_curtailment_match_vessim_within_half_a_percent(city, export_kw):
    solar = read_solcast(SHARED_DATA / "solar" / "solcast_normalized_5min_10_cities.csv")
    start = pd.Timestamp(solar.index[0])
    profile = solar[city].to_numpy()[:WEEK]
    load = _load_profile(WEEK)
    # The load is made by an inference service: busy_kw 1, idle 0, PUE 1, 10 rps per replica.
    point = DemandPoint("p", 40.0, -100.0)
    battery = Battery(
        capacity_kwh=120.0,
        charge_kw=60.0,
        discharge_kw=60.0,
        round_trip_efficiency=1.0,
        soc_min=0.1,
        soc_max=1.0,
        initial_soc=0.5,
    )
    sc = scenario(
        [
            site(
                "s",
                n=WEEK,
                accelerators=100,
                solar_kw=80.0,
                solar_profile=profile,
                export_limit_kw=export_kw,
                battery=battery,
            )
        ],
        n=WEEK,
        points=[point],
        services=[service("load", "p", load * 10.0, throughput=10.0)],
    )
    sc = type(sc)(**{**sc.__dict__, "start": start, "end": start + WEEK * sc.step})
    record = simulate(sc, get_policy("agnostic"), SimulationOptions(check_energy_balance=True))
    ours: SiteRecorder = record.sites
    np.testing.assert_allclose(ours.series("load_kw")[:, 0], load, rtol=1e-9)

    theirs, _ = run_vessim(
        start,
        300,
        ours.series("load_kw"),
        80.0 * profile[:, None],
        [TwinBattery(120.0, 0.5, 0.1, 0.5)],
        [export_kw],
    )
    v = theirs["site0"]
    totals = ours.energy_kwh
    mine = {
        "grid_import": totals["grid"][0],
        "charge": totals["battery_charge"][0],
        "discharge": totals["battery_discharge"][0],
        "curtailed": totals["curtailed"][0],
        "export": totals["export"][0],
    }
    assert mine["grid_import"] > 100
    assert mine["charge"] > 10
    for key, value in mine.items():
        assert value == pytest.approx(v[key], rel=0.005, abs=1e-6), key
