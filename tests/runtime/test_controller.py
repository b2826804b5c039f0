"""The live controller on an in-memory store and a manual clock."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from datetime import time as clock_time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.builders import job_record, scenario, site, small_fleet
from wattroute.model.arrays import FleetSignals, published_ahead
from wattroute.policies import get_policy
from wattroute.runtime import (
    ControllerOptions,
    GridEventRecord,
    JobRecord,
    ManualClock,
    MemoryStore,
    ReplayClock,
    ReplayProvider,
    ServiceRecord,
    SiteOverride,
    SiteReading,
    WithholdingProvider,
    build_controller,
)
from wattroute.runtime.records import Heartbeat
from wattroute.runtime.registry import CodeEntry, CodeRegistry
from wattroute.signals.publication import DayAhead

DAY = 288


def _job(i: int, sc, hours_from: float = 0.0, work: float = 4.0, slack: float = 6.0) -> JobRecord:
    return job_record(i, sc.start + pd.Timedelta(hours=hours_from), work, slack)


def _controller(sc, store, policy="greedy", provider=None):
    return build_controller(sc, store, get_policy(policy), ManualClock(sc.start), provider=provider)


@pytest.mark.parametrize("policy", ["agnostic", "greedy", "mpc"])
def test_jobs_submitted_to_the_store_run_to_completion(policy):
    sc = small_fleet()
    store = MemoryStore()
    for i in range(5):
        store.add_job(_job(i, sc))
    controller = _controller(sc, store, policy)
    for _ in range(12 * 12):
        controller.tick()
    jobs = store.jobs.values()
    assert all(j.state == "completed" for j in jobs)
    assert all(j.done_accelerator_hours == pytest.approx(4.0) for j in jobs)
    assert all(j.remaining_at_deadline in (None, 0.0) for j in jobs)
    totals = store.ticks[-1].state["totals"]
    assert totals["energy_kwh"]["load"] > 20 * 0.8  # the work ran, plus idle power


def test_cancelled_jobs_stop_and_stay_cancelled():
    sc = small_fleet()
    store = MemoryStore()
    store.add_job(_job(0, sc, work=20.0, slack=20))
    controller = _controller(sc, store, "agnostic")
    controller.tick()
    assert store.jobs["job-0"].state == "running"
    store.jobs["job-0"].state = "cancelled"
    for _ in range(10):
        controller.tick()
    assert store.jobs["job-0"].state == "cancelled"
    assert not store.ticks[-1].plan["jobs"]


def test_inference_services_are_served_within_their_slo():
    sc = small_fleet()
    store = MemoryStore()
    store.service_records["v"] = ServiceRecord("v", "t", 30.0, 5.0, 10.0, 1, {"p": 25.0})
    controller = _controller(sc, store, "agnostic")
    for _ in range(12):
        controller.tick()
    totals = store.ticks[-1].state["totals"]
    assert totals["inference"]["requests"] == pytest.approx(25.0 * 12 * 300)
    assert totals["inference"]["served_within_slo"] == pytest.approx(25.0 * 12 * 300)


def test_a_latency_margin_keeps_sites_that_fit_the_slo_only_without_it_out_of_the_routing():
    sc = small_fleet()
    rtt = sc.network.rtt_matrix_ms(
        [(40.0, -100.0, None)], [(s.latitude, s.longitude, s.zone) for s in sc.sites]
    )[0]
    # An SLO that site a meets with 0.5 ms to spare, and b not at all.
    slo = float(rtt[0]) + 5.0 + 0.5
    assert float(rtt[1]) + 5.0 > slo

    def routed_to_a(margin_ms: float) -> float:
        store = MemoryStore()
        store.service_records["v"] = ServiceRecord("v", "t", slo, 5.0, 10.0, 1, {"p": 25.0})
        options = ControllerOptions(latency_margin_ms=margin_ms)
        controller = build_controller(
            sc, store, get_policy("agnostic"), ManualClock(sc.start), options=options
        )
        tick = controller.tick()
        return float(tick.plan["routing"]["t/v"]["p"].get("a", 0.0))

    assert routed_to_a(0.0) == pytest.approx(1.0)
    assert routed_to_a(1.0) == 0.0  # a gateway that takes 1 ms would miss the SLO at a


def test_a_withheld_signal_degrades_the_controller_which_plans_on_and_recovers():
    sc = small_fleet()
    store = MemoryStore()
    for i in range(3):
        store.add_job(_job(i, sc, work=6.0, slack=10))
    provider = WithholdingProvider(
        ReplayProvider(FleetSignals.from_scenario(sc)), "carbon_g_per_kwh", 5, 20
    )
    controller = _controller(sc, store, "greedy", provider)
    degraded = []
    for _ in range(30):
        tick = controller.tick()
        degraded.append(tick.degraded)
        if 5 <= tick.step <= 20:
            assert any("carbon_g_per_kwh" in r for r in tick.reasons)
    assert degraded[:5] == [False] * 5
    assert all(degraded[5:21])
    assert degraded[21:] == [False] * 9  # recovered when data returned
    assert controller.status.degraded is False
    assert provider.withheld == 16


def test_degraded_mode_holds_back_a_safety_margin_on_power():
    sc = small_fleet()
    store = MemoryStore()
    store.overrides["b"] = SiteOverride(import_limit_kw=10.0)
    provider = WithholdingProvider(
        ReplayProvider(FleetSignals.from_scenario(sc)), "price_usd_per_mwh", 0, 100
    )
    controller = _controller(sc, store, "agnostic", provider)
    controller.tick()
    fleet = controller._effective_fleet(sc.start)
    assert fleet.import_limit_kw[1] == pytest.approx(9.0)


def test_a_grid_event_caps_the_site_and_is_reported_on():
    sc = small_fleet()
    store = MemoryStore()
    for i in range(4):
        store.add_job(_job(i, sc, work=16.0, slack=30))
    start, end = sc.start + pd.Timedelta(hours=1), sc.start + pd.Timedelta(hours=2)
    store.events["e1"] = GridEventRecord("e1", "b", 2.0, start, end, "demand response")
    controller = _controller(sc, store, "agnostic")
    for _ in range(30):
        controller.tick()
    event = store.events["e1"]
    assert event.complied is True
    assert event.peak_kw <= 2.0 + 1e-6
    loads = [t.outcome["sites"]["b"]["load_kw"] for t in store.ticks if start <= t.time < end]
    assert max(loads) <= 2.0 + 1e-6


def test_an_offline_site_runs_nothing():
    sc = small_fleet()
    store = MemoryStore()
    store.overrides["a"] = SiteOverride(offline=True)
    for i in range(4):
        store.add_job(_job(i, sc))
    controller = _controller(sc, store, "agnostic")
    for _ in range(6):
        controller.tick()
    assert all(a["site"] == "b" for t in store.ticks for a in t.plan["jobs"].values())


def test_a_restarted_controller_resumes_after_the_last_tick():
    sc = small_fleet()
    store = MemoryStore()
    store.add_job(_job(0, sc, work=8.0, slack=12))
    first = _controller(sc, store, "agnostic")
    for _ in range(7):
        first.tick()
    soc = store.ticks[-1].state["soc_kwh"]
    done = store.jobs["job-0"].done_accelerator_hours
    second = _controller(sc, store, "agnostic")
    assert second.next_step == 7
    np.testing.assert_allclose(second.executor.soc_kwh, soc)
    tick = second.tick()
    assert tick.step == 7
    assert store.jobs["job-0"].done_accelerator_hours > done


class _Recording(MemoryStore):
    """Keeps every heartbeat."""

    def __init__(self) -> None:
        super().__init__()
        self.beats: list[Heartbeat] = []

    def heartbeat(self, beat: Heartbeat) -> None:
        self.beats.append(beat)


def test_the_controller_reports_in_while_it_waits_and_when_the_period_ends():
    sc = small_fleet()
    store = _Recording()
    # The first step is due 0.3 s of wall time from now; a heartbeat every 0.05 s meanwhile.
    clock = ReplayClock(sc.start - sc.step, speedup=1000.0)
    options = ControllerOptions(heartbeat_s=0.05)
    c = build_controller(sc, store, get_policy("greedy"), clock, options=options)
    stop = threading.Event()
    thread = threading.Thread(target=c.run, args=(stop,))
    thread.start()
    time.sleep(0.2)
    waiting = list(store.beats)
    stop.set()
    thread.join(timeout=10)
    assert len(waiting) >= 3
    assert all(b.step == -1 and not b.finished for b in waiting)
    assert (waiting[-1].at - waiting[0].at).total_seconds() >= 0.09

    # A short period on a manual clock: a beat with signals per tick, then a last one, finished.
    short = _Recording()
    c = build_controller(sc, short, get_policy("greedy"), ManualClock(sc.start))
    c.n_steps = 3
    c.run(threading.Event())
    beats = short.beats
    assert [b.step for b in beats] == [-1, 0, 1, 2, 2]
    assert beats[-1].finished
    assert set(beats[1].signals["sites"]) == {"a", "b"}
    assert len(beats[1].signals["sites"]["a"]["price_usd_per_mwh"]["forecast"]) == DAY


def test_a_grid_event_in_force_between_ticks_is_acted_on_at_once_and_timed():
    sc = small_fleet()
    store = MemoryStore()
    for i in range(6):
        store.add_job(_job(i, sc, work=20.0, slack=30))
    clock = ManualClock(sc.start)
    controller = build_controller(sc, store, get_policy("agnostic"), clock)
    controller.tick()
    before = store.ticks[-1].plan["jobs"]
    assert any(a["site"] == "a" for a in before.values())
    # Mid-step, the grid asks site a to stay under 1 kW until later in the day.
    clock.current = sc.start + pd.Timedelta(minutes=2)
    store.events["e1"] = GridEventRecord(
        "e1",
        "a",
        1.0,
        sc.start,
        sc.start + pd.Timedelta(hours=2),
        created_at=pd.Timestamp.now(tz="UTC"),
    )
    controller.watch()
    plan = store.ticks[-1].plan
    assert plan["correction"]["reason"] == "grid event in force: a at most 1.00 kW"
    on_a = sum(a["accelerators"] for a in plan["jobs"].values() if a["site"] == "a")
    assert on_a * 1.0 <= 1.0  # 1 kW per busy accelerator: at most one runs there now
    assert all(store.jobs[j].site == a["site"] for j, a in plan["jobs"].items())
    # The (simulated) load fell within the cap as soon as the correction was enacted.
    assert store.events["e1"].compliance_s is not None
    assert store.events["e1"].compliance_s < 5.0
    # Nothing changed since: no second correction.
    controller.watch()
    assert store.ticks[-1].plan["correction"] == plan["correction"]


def test_a_service_created_mid_run_is_planned_for_at_once_by_mpc():
    sc = small_fleet()
    store = MemoryStore()
    store.add_job(_job(0, sc))
    controller = _controller(sc, store, "mpc")
    for _ in range(3):
        controller.tick()
    store.service_records["v"] = ServiceRecord("v", "t", 80.0, 5.0, 10.0, 1, {"p": 30.0})
    tick = controller.tick()
    shares = tick.plan["routing"]["t/v"]["p"]
    assert sum(shares.values()) == pytest.approx(1.0)
    # The tick served the new service's 30 requests/s over its 5 minutes, all within the SLO.
    assert tick.outcome["requests"] == pytest.approx(30.0 * 300)
    assert tick.outcome["within_slo"] == pytest.approx(30.0 * 300)
    assert controller.status.policy_failures == 0


def test_mpc_under_the_controller_solves_its_replans_off_the_tick():
    sc = small_fleet()
    store = MemoryStore()
    store.add_job(_job(0, sc, work=8.0, slack=12))
    controller = _controller(sc, store, "mpc")
    assert controller.policy.background_replans
    for _ in range(3 * 12):
        controller.tick()
    stats = controller.policy.stats()
    assert stats["replans_in_background"] >= 1
    assert stats["replans_in_background"] + stats["replans_skipped_while_solving"] >= 2
    assert controller.status.policy_failures == 0


class _Broken:
    name = "broken"

    def reset(self) -> None:
        pass

    def stats(self) -> dict[str, float]:
        return {}

    def decide(self, observation):
        raise RuntimeError("bug")


def test_a_failing_policy_does_not_stall_the_fleet():
    sc = small_fleet()
    store = MemoryStore()
    store.add_job(_job(0, sc))
    controller = build_controller(sc, store, _Broken(), ManualClock(sc.start))
    for _ in range(3):
        controller.tick()
    assert controller.status.policy_failures == 3
    assert store.ticks[-1].plan["jobs"]  # greedy ran the job meanwhile


def _solar_farm():
    """Site ``farm``: 8 kW of solar at noon behind a 1 kW grid link, cheap; ``town``: an
    unlimited grid link at twice the price."""
    n = DAY
    return scenario(
        [
            site(
                "farm",
                n=n,
                accelerators=8,
                import_limit_kw=1.0,
                solar_kw=8.0,
                solar_profile=np.ones(n),
                price=20.0,
            ),
            site("town", n=n, accelerators=8, price=40.0, latitude=41),
        ],
        n=n,
    )


def _on_site(plan: dict[str, Any], name: str) -> int:
    """Accelerators the plan gives batch jobs at site ``name``."""
    return sum(a["accelerators"] for a in plan["jobs"].values() if a["site"] == name)


def test_a_meter_reading_that_cuts_on_site_power_sheds_work_at_once_and_is_timed():
    sc = _solar_farm()
    store = MemoryStore()
    for i in range(4):
        store.add_job(_job(i, sc, work=20.0, slack=30))
    clock = ManualClock(sc.start)
    controller = build_controller(sc, store, get_policy("greedy"), clock)
    controller.tick()
    # The sun powers more than the grid link could.
    assert _on_site(store.ticks[-1].plan, "farm") > 1
    # A cloud: the farm's meters read no solar, mid-step.
    clock.current = sc.start + pd.Timedelta(minutes=1)
    store.set_reading(SiteReading("farm", clock.current, pd.Timestamp.now(tz="UTC"), solar_kw=0.0))
    controller.watch()
    plan = store.ticks[-1].plan
    assert plan["correction"]["reason"] == "reading at farm: solar 8.0 -> 0.0 kW"
    assert _on_site(plan, "farm") <= 1  # 1 kW of grid powers one busy accelerator (1 kW)
    seconds = store.readings["farm"].compliance_s
    assert seconds is not None
    assert seconds < 5.0
    # The same reading again moves nothing: no second correction.
    controller.watch()
    assert store.ticks[-1].plan["correction"] == plan["correction"]
    # It stands for one step: the next tick plans with it, the one after with the provider.
    clock.current = sc.start + sc.step
    tick = controller.tick()
    assert _on_site(tick.plan, "farm") <= 1
    clock.current = sc.start + 2 * sc.step
    tick = controller.tick()
    assert _on_site(tick.plan, "farm") > 1


def test_a_small_move_in_a_reading_waits_for_the_next_tick():
    sc = _solar_farm()
    store = MemoryStore()
    store.add_job(_job(0, sc, work=20.0, slack=30))
    clock = ManualClock(sc.start)
    controller = build_controller(sc, store, get_policy("greedy"), clock)
    controller.tick()
    store.set_reading(SiteReading("farm", clock.current, pd.Timestamp.now(tz="UTC"), solar_kw=7.9))
    controller.watch()  # 0.1 kW is under 2 % of the farm's 8 kW busy load: no correction
    assert "correction" not in store.ticks[-1].plan


def _day_ahead_fleet():
    n = DAY * 2
    price = np.arange(n, dtype=float)  # every step's price tells which step it is
    noon = DayAhead("UTC", clock_time(12, 0))
    a = site("a", price=price, n=n, day_ahead=noon)
    return scenario([a, site("b", latitude=41, n=n)], n=n), price


def test_the_controller_reads_day_ahead_prices_once_published_and_no_further():
    sc, price = _day_ahead_fleet()
    controller = _controller(sc, MemoryStore(), "agnostic")
    controller.tick()  # step 0, midnight UTC: the rest of day 1 is published at site a only
    history_forecast = controller._signal_snapshot(0)["sites"]
    a = history_forecast["a"]["price_usd_per_mwh"]["forecast"]
    b = history_forecast["b"]["price_usd_per_mwh"]["forecast"]
    # steps 1 .. DAY - 1 are published; step DAY (day 2) is not, and is a guess from the past
    np.testing.assert_allclose(a[: DAY - 1], price[1:DAY])
    assert a[DAY - 1] != price[DAY]
    assert len(set(b)) == 1  # site b has no day-ahead rule: a flat forecast from the past
    assert controller.published["price_usd_per_mwh"][0, 0] == DAY  # day 2 not yet out
    assert np.isnan(controller.received["price_usd_per_mwh"][DAY, 0])  # nothing beyond


def test_a_published_price_stands_in_while_its_feed_is_down():
    sc, price = _day_ahead_fleet()
    provider = WithholdingProvider(
        ReplayProvider(FleetSignals.from_scenario(sc), published_ahead(sc)),
        "price_usd_per_mwh",
        3,
        5,
        site=0,
    )
    controller = _controller(sc, MemoryStore(), "agnostic", provider)
    ticks = [controller.tick() for _ in range(6)]
    # published at step 0 for the whole day, so the outage at steps 3-5 loses nothing
    assert not any(t.degraded for t in ticks)
    np.testing.assert_allclose(controller.received["price_usd_per_mwh"][3:6, 0], price[3:6])


def test_a_job_whose_code_was_withdrawn_fails_instead_of_running():
    sc = small_fleet()
    store = MemoryStore()
    registry = CodeRegistry.of(
        [CodeEntry("train", "wattroute.execution.examples:train_logistic_regression")]
    )
    for i, function in enumerate(["train", "withdrawn", None]):
        store.add_job(dataclasses.replace(_job(i, sc), function=function))
    # Registered for another tenant only: the job's tenant may not run it either.
    store.add_job(dataclasses.replace(_job(3, sc), function="theirs"))
    registry = CodeRegistry.of(
        [
            *registry.jobs.values(),
            CodeEntry(
                "theirs", "wattroute.execution.examples:train_logistic_regression", frozenset({"x"})
            ),
        ]
    )
    controller = build_controller(
        sc,
        store,
        get_policy("greedy"),
        ManualClock(sc.start),
        options=ControllerOptions(registry=registry),
    )
    tick = controller.tick()
    assert set(tick.plan["jobs"]) == {"job-0", "job-2"}
    for refused, name in (("job-1", "withdrawn"), ("job-3", "theirs")):
        job = store.jobs[refused]
        assert job.state == "failed"
        assert job.error is not None
        assert f"job function {name!r} is no longer registered" in job.error
    assert store.jobs["job-0"].state == "running"


def test_a_service_whose_handler_is_not_registered_is_left_unplanned(caplog):
    sc = small_fleet()
    store = MemoryStore()
    store.service_records["t/ok"] = ServiceRecord("ok", "t", 30.0, 5.0, 10.0, 1, {"p": 5.0}, "mlp")
    store.service_records["t/no"] = ServiceRecord("no", "t", 30.0, 5.0, 10.0, 1, {"p": 5.0}, "gone")
    controller = _controller(sc, store, "agnostic")
    with caplog.at_level(logging.WARNING, "wattroute.controller"):
        tick = controller.tick()
        controller.tick()
    assert set(tick.plan["routing"]) == {"t/ok"}
    assert [r.message for r in caplog.records].count(
        "service left unplanned: its handler is not registered"
    ) == 1


@pytest.mark.parametrize("skip", [True, False])
def test_on_real_time_the_controller_goes_to_the_step_in_force(skip):
    sc = small_fleet()
    store = MemoryStore()
    clock = ManualClock(sc.start + pd.Timedelta(hours=10, minutes=2))
    options = ControllerOptions(skip_missed_steps=skip)
    controller = build_controller(sc, store, get_policy("greedy"), clock, options=options)
    stop = threading.Event()
    controller.listeners.append(lambda tick, report: stop.set())
    controller.run(stop)
    # Ten hours in, the step in force is 120: a live controller starts there; a replay of the
    # missed steps is what the simulator does, not a controller on real time.
    assert [t.step for t in store.ticks] == ([120] if skip else [0])


def test_on_real_time_signals_that_end_before_now_are_not_run_through():
    sc = small_fleet()
    store = _Recording()
    clock = ManualClock(sc.end + pd.Timedelta(days=365))
    options = ControllerOptions(skip_missed_steps=True)
    controller = build_controller(sc, store, get_policy("greedy"), clock, options=options)
    controller.run(threading.Event())
    assert store.beats[-1].finished
    assert store.beats[-1].step == -1  # nothing decided
