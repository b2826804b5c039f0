"""The held-out stress weeks of ``benchmarks/stress_weeks.py`` are made of their own year's data."""

from __future__ import annotations

import pandas as pd

from benchmarks.stress_weeks import stress_week
from tests.builders import SHARED_DATA, needs_shared_data
from wattroute.iotools.grid import read_grid


@needs_shared_data()
def test_a_stress_week_takes_the_prices_and_jobs_of_its_own_weeks() -> None:
    start = pd.Timestamp("2022-03-20", tz="UTC")
    week = stress_week(start, days=2)
    assert week.start == start
    assert week.n_steps == 2 * 288
    prices = read_grid(SHARED_DATA / "grid" / "DE-LU_2022.csv")["price_usd_per_mwh"]
    frankfurt = next(site for site in week.sites if site.name == "frankfurt")
    noon = start + pd.Timedelta(hours=12)
    assert frankfurt.grid is not None
    assert frankfurt.grid.price.at(noon) == prices[noon]
    # The jobs are the trace's of the same hours of the year: they arrive within the week.
    assert week.jobs
    assert all(start <= job.arrival < start + pd.Timedelta(days=2) for job in week.jobs)
