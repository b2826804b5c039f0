"""The cost of a kWh and of the power flows of a run, in the objective's terms.

Every layer (simulator ledger and record, live executor, planning LP coefficients, oracle,
policies' cost estimates) prices energy with these functions::

    cost_usd      = dt x (import kW x price / 1000 + genset kW x fuel
                          - export kW x export price / 1000)
    emissions_kg  = dt x (import kW x intensity + genset kW x genset factor) / 1000
    objective_usd = cost_usd + carbon price x emissions_kg / 1000 + penalties_usd

Prices are USD/MWh, fuel USD/kWh, intensities and emission factors gCO2eq/kWh, the carbon
price USD/tonne, ``dt`` hours. Arrays broadcast per site (``(S,)`` fleet constants against
``(T, S)`` flows and signals).
"""

from __future__ import annotations

import numpy as np

from wattroute.model.arrays import FleetStatic

G_PER_TONNE = 1e6
KG_PER_TONNE = 1000.0
KWH_PER_MWH = 1000.0


def import_cost_usd_per_kwh(
    price_usd_per_mwh: np.ndarray, carbon_g_per_kwh: np.ndarray, carbon_price_usd_per_tonne: float
) -> np.ndarray:
    """What a kWh from the grid costs in the objective, USD/kWh: its price plus the carbon
    price on its emissions (any shape)."""
    return (
        price_usd_per_mwh / KWH_PER_MWH
        + carbon_price_usd_per_tonne * carbon_g_per_kwh / G_PER_TONNE
    )


def genset_cost_usd_per_kwh(fleet: FleetStatic, carbon_price_usd_per_tonne: float) -> np.ndarray:
    """What a kWh from each site's genset costs in the objective, USD/kWh, ``(S,)``: fuel plus
    the carbon price on its emissions."""
    return (
        fleet.genset_cost_usd_per_kwh
        + carbon_price_usd_per_tonne * fleet.genset_g_per_kwh / G_PER_TONNE
    )


def export_value_usd_per_kwh(export_price_usd_per_mwh: np.ndarray) -> np.ndarray:
    """What a kWh exported earns, USD/kWh (negative where exporting costs)."""
    return export_price_usd_per_mwh / KWH_PER_MWH


def energy_costs(
    fleet: FleetStatic,
    price: np.ndarray,
    export_price: np.ndarray,
    carbon: np.ndarray,
    carbon_price: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """USD/kWh of each source more load could draw on at each site, ``(..., S)`` each:
    surplus renewables (the export revenue forgone where the site can export, else nothing),
    grid imports (:func:`import_cost_usd_per_kwh`) and the genset
    (:func:`genset_cost_usd_per_kwh`)."""
    renewable = np.where(fleet.export_limit_kw > 0, export_value_usd_per_kwh(export_price), 0.0)
    grid = import_cost_usd_per_kwh(price, carbon, carbon_price)
    genset = genset_cost_usd_per_kwh(fleet, carbon_price)
    return renewable, grid, np.broadcast_to(genset, np.shape(grid))


def bought_power_cost_usd_per_kwh(
    fleet: FleetStatic, import_cost: np.ndarray, genset_cost: np.ndarray
) -> np.ndarray:
    """The cost of the power a site buys for more load, USD/kWh: the grid's
    (:func:`import_cost_usd_per_kwh`) where it can import, else its genset's."""
    return np.where(fleet.import_limit_kw > 0, import_cost, genset_cost)


def busy_accelerator_hour_usd(
    fleet: FleetStatic, pue: np.ndarray, energy_cost_usd_per_kwh: np.ndarray
) -> np.ndarray:
    """The energy cost of keeping one more accelerator busy for an hour, USD, when the extra
    facility power (:func:`~wattroute.model.power.busy_accelerator_kw`) costs
    ``energy_cost_usd_per_kwh``."""
    return energy_cost_usd_per_kwh * pue * fleet.busy_extra_kw


def energy_cost_usd(
    fleet: FleetStatic,
    step_h: float,
    grid_import_kw: np.ndarray,
    export_kw: np.ndarray,
    genset_kw: np.ndarray,
    price_usd_per_mwh: np.ndarray,
    export_price_usd_per_mwh: np.ndarray,
) -> np.ndarray:
    """Money paid for power flows over steps of ``step_h`` hours, USD, per step and site:
    imports at the price plus genset fuel minus export revenue."""
    return step_h * (
        grid_import_kw * price_usd_per_mwh / KWH_PER_MWH
        + genset_kw * fleet.genset_cost_usd_per_kwh
        - export_kw * export_price_usd_per_mwh / KWH_PER_MWH
    )


def emissions_kg(
    fleet: FleetStatic,
    step_h: float,
    grid_import_kw: np.ndarray,
    genset_kw: np.ndarray,
    carbon_g_per_kwh: np.ndarray,
) -> np.ndarray:
    """Emissions of power flows over steps of ``step_h`` hours, kgCO2eq, per step and site:
    imports at the grid's intensity plus the genset at its emission factor."""
    grams = grid_import_kw * carbon_g_per_kwh + genset_kw * fleet.genset_g_per_kwh
    return step_h * grams / 1000.0


def objective_usd(
    cost_usd: float, emissions_kg: float, carbon_price_usd_per_tonne: float, penalties_usd: float
) -> float:
    """The objective every run is judged on, USD: cost, the carbon price on emissions, and
    penalties."""
    return cost_usd + carbon_price_usd_per_tonne * emissions_kg / KG_PER_TONNE + penalties_usd
