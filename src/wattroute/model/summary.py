"""The summary of a run: the fields every simulation, the oracle and the live controller report.

A :class:`Summary` is what ``summary.json`` holds (DESIGN.md, "What is measured"); the simulator
(:func:`wattroute.sim.summarize`) and the oracle (:func:`wattroute.optimise.oracle.solve_oracle`)
produce the same fields, the bench adds capture ratios, and the live controller keeps the running
part of it (:class:`RunningTotals`). Plain JSON values only, so a summary is written and read
back as it is. docs/results.md describes every field.

``objective_usd = cost_usd + carbon_price_usd_per_tonne x emissions_kg / 1000
+ penalties_usd.total`` (:func:`wattroute.model.costs.objective_usd`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict, cast

from wattroute.model.costs import objective_usd

if TYPE_CHECKING:
    from wattroute.model.scenario import Scenario


class Period(TypedDict):
    """The simulated period: ISO 8601 start and end, step length in minutes, number of steps."""

    start: str
    end: str
    step_minutes: float
    steps: int


class PenaltiesUsd(TypedDict):
    """Penalties, USD: work undone at deadlines, requests not served within their SLO, and
    load planned unserved (the oracle's ``shed``; the simulator reports unserved energy in
    ``energy_kwh.unserved`` and prices it at 0)."""

    deadline: float
    slo: float
    shed: float
    total: float


class EnergyKwh(TypedDict):
    """Energy by source and sink, kWh. ``solar`` and ``wind`` are what was used (curtailment
    apart), ``load`` the facility energy served, ``unserved`` what no source covered.
    Identity: grid + solar + wind + genset + battery_discharge = load + battery_charge + export."""

    grid: float
    solar: float
    wind: float
    genset: float
    battery_charge: float
    battery_discharge: float
    curtailed: float
    export: float
    load: float
    unserved: float


ENERGY_KEYS = tuple(EnergyKwh.__annotations__)
"""The sources and sinks of ``energy_kwh``, in order."""


class Requests(TypedDict):
    """Inference requests: all, served within the SLO, served late, dropped."""

    requests: float
    served_within_slo: float
    served_late: float
    dropped: float


REQUEST_KEYS = tuple(Requests.__annotations__)
"""The counts of :class:`Requests`, in order."""


class InferenceTotals(Requests):
    """Requests of every service, the share not served within the SLO, and per service."""

    slo_violation_fraction: float
    by_service: dict[str, Requests]


class BatchTotals(TypedDict):
    """Batch jobs: how many, completed, deadline misses (finished late or undone at a deadline
    inside the period), work done and undone at deadlines (accelerator-hours), mean delay of
    completed jobs past the earliest they could finish (h), moves between sites, stops
    (checkpoints), hours of checkpoint and migration overhead paid, and hours of it still owed
    at deadlines (by jobs that were restoring when their deadline fell)."""

    jobs: int
    completed: int
    deadline_misses: int
    work_accelerator_hours: float
    work_undone_at_deadline_accelerator_hours: float
    mean_completion_delay_h: float
    moves: int
    stops: int
    overhead_hours: float
    overhead_owed_at_deadline_h: float


class DecisionTimes(TypedDict):
    """Time the policy spent deciding, s: in all, the 99th percentile per decision, and the
    number of decisions."""

    total: float
    p99: float
    decisions: int


class Repairs(TypedDict):
    """How often the simulator had to repair a policy's decision, by kind (zero for the oracle,
    whose plan needs none)."""

    decisions_repaired: int
    jobs_moved_to_allowed: int
    jobs_clamped: int
    jobs_stopped_for_capacity: int
    jobs_stopped_for_power: int
    sites_short_of_power: int
    sites_powered_down: int
    sites_inference_capped: int
    routing_rescaled: int


class SiteTotals(TypedDict):
    """One site: cost (USD), emissions (kg), energy by source (kWh), peak facility load (kW),
    mean PUE."""

    cost_usd: float
    emissions_kg: float
    energy_kwh: EnergyKwh
    peak_load_kw: float
    mean_pue: float


class LpStats(TypedDict):
    """The oracle's linear program: size, HiGHS status, iterations and solve time (s)."""

    columns: int
    rows: int
    nonzeros: int
    status: str
    iterations: int
    solve_s: float


class CaptureInputs(TypedDict):
    """The objectives (USD) a capture ratio was computed from."""

    baseline_objective_usd: float
    oracle_objective_usd: float


class OptionalFields(TypedDict, total=False):
    """Fields only some runs have: the oracle's planning period and LP, a policy's counters,
    and the capture ratio the bench adds (docs/results.md)."""

    period_h: float
    lp: LpStats
    policy_stats: dict[str, float]
    capture_ratio: float
    capture_ratio_inputs: CaptureInputs


class Summary(OptionalFields):
    """Everything a run is judged on (see the module docstring and docs/results.md)."""

    scenario: str
    policy: str
    forecaster: str
    bound: bool
    period: Period
    objective_usd: float
    cost_usd: float
    emissions_kg: float
    carbon_price_usd_per_tonne: float
    carbon_intensity_kind: str
    penalties_usd: PenaltiesUsd
    energy_kwh: EnergyKwh
    inference: InferenceTotals
    batch: BatchTotals
    decision_s: DecisionTimes
    wall_s: float
    blocks: int
    repairs: Repairs
    sites: dict[str, SiteTotals]
    notes: list[str]


def no_repairs() -> Repairs:
    """No repair of any kind."""
    return cast(Repairs, dict.fromkeys(Repairs.__annotations__, 0))


def violation_fraction(requests: float, served_within_slo: float) -> float:
    """Share of requests not served within their SLO (0 when there were none)."""
    if requests <= 0:
        return 0.0
    return max(requests - served_within_slo, 0.0) / requests  # float sums may cross


def period_of(scenario: Scenario) -> Period:
    """The scenario's period in a summary's terms."""
    return Period(
        start=scenario.start.isoformat(),
        end=scenario.end.isoformat(),
        step_minutes=scenario.step.total_seconds() / 60.0,
        steps=scenario.n_steps,
    )


_FLAT_ENERGY = {f"{key}_kwh": key for key in ENERGY_KEYS}
_FLAT_REQUESTS = {"within_slo": "served_within_slo", "late": "served_late"}


@dataclass
class RunningTotals:
    """What a live run has accumulated so far: the part of a :class:`Summary` that grows step by
    step — cost (USD), emissions (kg), energy (kWh) keyed as :data:`ENERGY_KEYS` and inference
    requests keyed as :data:`REQUEST_KEYS`."""

    cost_usd: float = 0.0
    emissions_kg: float = 0.0
    energy_kwh: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ENERGY_KEYS, 0.0))
    requests: dict[str, float] = field(default_factory=lambda: dict.fromkeys(REQUEST_KEYS, 0.0))

    def add(
        self,
        cost_usd: float,
        emissions_kg: float,
        energy_kwh: Mapping[str, float],
        requests: Mapping[str, float],
    ) -> None:
        """Add one step's cost, emissions, energy and requests (missing keys add nothing)."""
        self.cost_usd += cost_usd
        self.emissions_kg += emissions_kg
        for key in ENERGY_KEYS:
            self.energy_kwh[key] += float(energy_kwh.get(key, 0.0))
        for key in REQUEST_KEYS:
            self.requests[key] += float(requests.get(key, 0.0))

    def objective_usd_before_penalties(self, carbon_price_usd_per_tonne: float) -> float:
        """Cost plus the carbon price on emissions, USD (penalties are counted at the end)."""
        return objective_usd(self.cost_usd, self.emissions_kg, carbon_price_usd_per_tonne, 0.0)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values, as :meth:`from_json` reads them."""
        return {
            "cost_usd": self.cost_usd,
            "emissions_kg": self.emissions_kg,
            "energy_kwh": dict(self.energy_kwh),
            "inference": dict(self.requests),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunningTotals:
        """Totals written by :meth:`to_json`, or by earlier versions in one flat mapping
        (``grid_kwh``, ``within_slo``, ...), so that a run resumes from either."""
        energy = data.get("energy_kwh") or {
            key: value for flat, key in _FLAT_ENERGY.items() if (value := data.get(flat))
        }
        requests = data.get("inference") or {
            _FLAT_REQUESTS.get(flat, flat): value
            for flat in ("requests", "within_slo", "late", "dropped")
            if (value := data.get(flat))
        }
        totals = cls()
        totals.add(
            float(data.get("cost_usd", 0.0)), float(data.get("emissions_kg", 0.0)), energy, requests
        )
        return totals
