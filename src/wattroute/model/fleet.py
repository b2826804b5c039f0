"""Sites and their power sources.

Every class here is a plain frozen dataclass holding its own parameters, in the units its field
names state. Power drawn is positive. Signals (price, carbon, renewable profiles, temperature)
are already on the scenario's step grid when a site is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from wattroute.model import _checks as check
from wattroute.signals.publication import DayAhead
from wattroute.signals.signal import Signal


@dataclass(frozen=True)
class AcceleratorPool:
    """The accelerators of a site.

    Parameters
    ----------
    count
        Number of accelerators.
    busy_kw
        IT power of one accelerator running work, kW (including its share of host power).
    idle_kw
        IT power of one powered but idle accelerator, kW.
    """

    count: int
    busy_kw: float
    idle_kw: float

    def __post_init__(self) -> None:
        check.whole("accelerators.count", self.count, "give the number of accelerators, 0 or more")
        check.number(
            "accelerators.busy_kw",
            self.busy_kw,
            "give the IT power of one accelerator running work, in kW",
            least=0,
        )
        check.number(
            "accelerators.idle_kw",
            self.idle_kw,
            "give the IT power of one idle accelerator, in kW",
            least=0,
        )
        if self.idle_kw > self.busy_kw:
            check.fail(
                "accelerators.idle_kw",
                f"must not exceed busy_kw ({self.busy_kw!r}), got {self.idle_kw!r}.",
                "lower idle_kw or raise busy_kw",
            )


@dataclass(frozen=True)
class Pue:
    """Power usage effectiveness: facility power / IT power.

    Constant when ``per_degree_c`` is 0; otherwise it rises linearly with outdoor temperature
    above ``reference_c`` (cooling works harder), capped at ``maximum``.

    Parameters
    ----------
    base
        PUE at or below the reference temperature, dimensionless (>= 1).
    per_degree_c
        PUE added per degree Celsius above ``reference_c``.
    reference_c
        Outdoor temperature, degrees Celsius, up to which the PUE is ``base``.
    maximum
        Upper bound of the PUE (>= ``base``).
    """

    base: float = 1.2
    per_degree_c: float = 0.0
    reference_c: float = 20.0
    maximum: float = 2.0

    def __post_init__(self) -> None:
        check.number("pue.base", self.base, "give facility power / IT power, e.g. 1.2", least=1)
        check.number(
            "pue.per_degree_c",
            self.per_degree_c,
            "give the PUE added per degree Celsius, or 0 for a constant PUE",
            least=0,
        )
        check.number(
            "pue.reference_c",
            self.reference_c,
            "give the outdoor temperature, degrees Celsius, up to which the PUE is base",
        )
        check.number(
            "pue.maximum",
            self.maximum,
            f"give a finite maximum of at least base ({self.base!r}), or lower base",
            least=self.base,
        )

    @property
    def depends_on_temperature(self) -> bool:
        return self.per_degree_c != 0.0

    def at_temperature(self, temperature_c: np.ndarray) -> np.ndarray:
        """PUE for outdoor temperatures in degrees Celsius."""
        excess = np.maximum(np.asarray(temperature_c, dtype=np.float64) - self.reference_c, 0.0)
        return np.minimum(self.base + self.per_degree_c * excess, self.maximum)


@dataclass(frozen=True, eq=False)
class GridConnection:
    """A connection to the public grid.

    Parameters
    ----------
    import_limit_kw
        Maximum import, kW. 0 means islanded; ``math.inf`` means unlimited.
    export_limit_kw
        Maximum export, kW (0: no export).
    price
        Energy price, USD/MWh, paid on import.
    carbon
        Grid carbon intensity, gCO2eq/kWh, of the kind the scenario names (average or marginal).
    export_price
        Price earned on export, USD/MWh; ``None`` means the import price.
    day_ahead
        If the price is a day-ahead market's, when each day's prices are published (a
        planner may read them from then on); ``None``: known only as it happens.
    """

    import_limit_kw: float
    export_limit_kw: float
    price: Signal
    carbon: Signal
    export_price: Signal | None = None
    day_ahead: DayAhead | None = None

    def __post_init__(self) -> None:
        check.number(
            "grid.import_limit_kw",
            self.import_limit_kw,
            "give the import limit in kW: 0 for an islanded site, math.inf for no limit",
            least=0,
            infinite=True,
        )
        check.number(
            "grid.export_limit_kw",
            self.export_limit_kw,
            "give the export limit in kW: 0 for no export, math.inf for no limit",
            least=0,
            infinite=True,
        )
        check.series("grid.price", self.price, "give a price in USD/MWh for every step")
        check.series(
            "grid.carbon",
            self.carbon,
            "give a carbon intensity in gCO2eq/kWh, 0 or more, for every step",
            least=0,
        )
        if self.export_price is not None:
            check.series(
                "grid.export_price",
                self.export_price,
                "give an export price in USD/MWh for every step, or None for the import price",
            )

    @property
    def export_price_signal(self) -> Signal:
        return self.export_price if self.export_price is not None else self.price


@dataclass(frozen=True, eq=False)
class Renewable:
    """A solar or wind plant.

    Parameters
    ----------
    capacity_kw
        Nameplate (AC) capacity, kW.
    profile
        Available output as a fraction of nameplate, 0..1, per step.
    source
        How the profile was made, for reports (e.g. ``"pvlib from weather/GB_2023.csv"``).
    clear_sky
        Solar only: the output under a cloudless sky as a fraction of nameplate, per step. It
        follows from the sun's position and the PV model alone, so it is known ahead, and
        forecasts predict the clear-sky index (output / clear-sky output) instead of the
        output itself. ``None`` if not known.
    """

    capacity_kw: float
    profile: Signal
    source: str = ""
    clear_sky: np.ndarray | None = None

    def __post_init__(self) -> None:
        check.number(
            "renewable.capacity_kw",
            self.capacity_kw,
            "give the nameplate capacity in kW, 0 or more",
            least=0,
        )
        fraction = "give the output as a fraction of nameplate, 0..1, for every step"
        check.series("renewable.profile", self.profile, fraction, least=0, most=1)
        if self.clear_sky is not None:
            check.values_in_range(
                "renewable.clear_sky", self.clear_sky, fraction + ", or None", least=0, most=1
            )
            if len(self.clear_sky) != len(self.profile.values):
                check.fail(
                    "renewable.clear_sky",
                    f"has {len(self.clear_sky)} steps but the profile has "
                    f"{len(self.profile.values)}.",
                    "give one clear-sky value per step of the profile, or None",
                )

    def power_kw(self) -> np.ndarray:
        """Available output per step, kW."""
        return self.capacity_kw * np.asarray(self.profile.values)

    def clear_sky_kw(self) -> np.ndarray | None:
        """Output under a cloudless sky per step, kW (``None`` if not known)."""
        return None if self.clear_sky is None else self.capacity_kw * self.clear_sky


@dataclass(frozen=True)
class Battery:
    """A stationary battery.

    Round-trip efficiency is split evenly between charging and discharging: each direction
    loses ``1 - sqrt(round_trip_efficiency)`` of the energy passing through.

    Parameters
    ----------
    capacity_kwh
        Usable energy capacity, kWh.
    charge_kw, discharge_kw
        Maximum charge and discharge power at the AC bus, kW.
    round_trip_efficiency
        Fraction of energy charged that comes back out, 0..1.
    soc_min, soc_max
        State-of-charge limits as fractions of capacity.
    initial_soc
        State of charge at the start, fraction of capacity.
    """

    capacity_kwh: float
    charge_kw: float
    discharge_kw: float
    round_trip_efficiency: float = 0.9
    soc_min: float = 0.0
    soc_max: float = 1.0
    initial_soc: float = 0.5

    def __post_init__(self) -> None:
        for field, value, what in (
            ("capacity_kwh", self.capacity_kwh, "the usable energy capacity in kWh"),
            ("charge_kw", self.charge_kw, "the charge power limit in kW"),
            ("discharge_kw", self.discharge_kw, "the discharge power limit in kW"),
        ):
            check.number(f"battery.{field}", value, f"give {what}, 0 or more", least=0)
        check.number(
            "battery.round_trip_efficiency",
            self.round_trip_efficiency,
            "give the fraction of energy charged that comes back out, e.g. 0.9",
            above=0,
            most=1,
        )
        for field, value in (
            ("soc_min", self.soc_min),
            ("soc_max", self.soc_max),
            ("initial_soc", self.initial_soc),
        ):
            check.number(
                f"battery.{field}", value, "give a fraction of capacity, 0..1", least=0, most=1
            )
        if self.soc_min > self.soc_max:
            check.fail(
                "battery.soc_max",
                f"must not be below soc_min ({self.soc_min!r}), got {self.soc_max!r}.",
                "give 0 <= soc_min <= initial_soc <= soc_max <= 1",
            )
        if not self.soc_min <= self.initial_soc <= self.soc_max:
            check.fail(
                "battery.initial_soc",
                f"must lie between soc_min ({self.soc_min!r}) and soc_max "
                f"({self.soc_max!r}), got {self.initial_soc!r}.",
                "give 0 <= soc_min <= initial_soc <= soc_max <= 1",
            )

    @property
    def charge_efficiency(self) -> float:
        return math.sqrt(self.round_trip_efficiency)

    @property
    def discharge_efficiency(self) -> float:
        return math.sqrt(self.round_trip_efficiency)


@dataclass(frozen=True)
class Genset:
    """An on-site generator (gas or diesel).

    Parameters
    ----------
    capacity_kw
        Maximum output, kW.
    fuel_cost_usd_per_kwh
        Fuel cost per kWh generated, USD/kWh.
    emission_factor_g_per_kwh
        Emissions per kWh generated, gCO2eq/kWh.
    """

    capacity_kw: float
    fuel_cost_usd_per_kwh: float
    emission_factor_g_per_kwh: float

    def __post_init__(self) -> None:
        for field, value, what in (
            ("capacity_kw", self.capacity_kw, "the maximum output in kW"),
            ("fuel_cost_usd_per_kwh", self.fuel_cost_usd_per_kwh, "the fuel cost in USD/kWh"),
            (
                "emission_factor_g_per_kwh",
                self.emission_factor_g_per_kwh,
                "the emissions in gCO2eq/kWh",
            ),
        ):
            check.number(f"genset.{field}", value, f"give {what}, 0 or more", least=0)


@dataclass(frozen=True, eq=False)
class Site:
    """A compute location and its power sources.

    Parameters
    ----------
    name
        Unique name.
    latitude, longitude
        Location, decimal degrees.
    accelerators
        The accelerator pool.
    pue
        Power usage effectiveness model.
    grid
        Grid connection, or ``None`` for an islanded site.
    solar, wind
        On-site renewables, if any.
    battery, genset
        On-site storage and generator, if any.
    zone
        Grid zone code (Electricity Maps), used for network latency look-ups.
    temperature_c
        Outdoor temperature, degrees Celsius; required when the PUE depends on it.
    base_it_kw
        IT power drawn whatever runs (network, storage), kW.
    power_cap_kw
        Facility power the site may draw at most (its envelope), kW; ``math.inf`` if none.
    """

    name: str
    latitude: float
    longitude: float
    accelerators: AcceleratorPool
    pue: Pue = Pue()
    grid: GridConnection | None = None
    solar: Renewable | None = None
    wind: Renewable | None = None
    battery: Battery | None = None
    genset: Genset | None = None
    zone: str | None = None
    temperature_c: Signal | None = None
    base_it_kw: float = 0.0
    power_cap_kw: float = math.inf

    def __post_init__(self) -> None:
        at = f"sites[{self.name}]"
        check.place(at, self.name, self.latitude, self.longitude, "site")
        check.number(
            f"{at}.base_it_kw",
            self.base_it_kw,
            "give the IT power drawn whatever runs, in kW, 0 or more",
            least=0,
        )
        check.number(
            f"{at}.power_cap_kw",
            self.power_cap_kw,
            "give the facility power the site may draw at most, in kW, or math.inf for none",
            least=0,
            infinite=True,
        )
        if self.temperature_c is not None:
            check.series(
                f"{at}.temperature_c",
                self.temperature_c,
                "give an outdoor temperature in degrees Celsius for every step, or None",
            )

    def pue_series(self, n_steps: int) -> np.ndarray:
        """PUE per step (constant unless it depends on temperature)."""
        if self.pue.depends_on_temperature and self.temperature_c is not None:
            return self.pue.at_temperature(np.asarray(self.temperature_c.values))
        return np.full(n_steps, self.pue.base)
