"""Facility power: what a site draws for the accelerators it powers and keeps busy.

Every layer (simulator, policies, live executor, planning LP, oracle) computes a site's power
with these functions, so they cannot drift apart::

    IT kW       = base_it_kw + idle_kw x powered + (busy_kw - idle_kw) x busy
    facility kW = PUE x IT kW

``powered`` is the number of accelerators switched on (all of them unless a site had to power
some down), ``busy`` the number doing work, counted fractionally (an accelerator busy for half
a step counts as 0.5). Arrays broadcast per site: ``fleet`` arrays are ``(S,)``, ``pue``,
``busy`` and ``powered`` may be ``(S,)`` or ``(T, S)``.
"""

from __future__ import annotations

import numpy as np

from wattroute.model.arrays import FleetStatic


def it_kw(
    fleet: FleetStatic, busy: np.ndarray | float, powered: np.ndarray | None = None
) -> np.ndarray:
    """IT power, kW: the site's base load, ``powered`` accelerators idling (default: all of
    them) and ``busy`` of them working."""
    return _standing_it_kw(fleet, powered) + fleet.busy_extra_kw * busy


def _standing_it_kw(fleet: FleetStatic, powered: np.ndarray | None) -> np.ndarray:
    """IT power with no accelerator busy, kW: the base load and ``powered`` accelerators
    idling (``None``: all of them, kept on the fleet)."""
    if powered is None:
        return fleet.standing_it_kw
    return fleet.base_it_kw + fleet.idle_kw * powered


def facility_kw(
    fleet: FleetStatic,
    pue: np.ndarray,
    busy: np.ndarray | float,
    powered: np.ndarray | None = None,
) -> np.ndarray:
    """Facility power, kW: :func:`it_kw` times the PUE (dimensionless)."""
    return it_kw(fleet, busy, powered) * pue


def standing_kw(
    fleet: FleetStatic, pue: np.ndarray, powered: np.ndarray | None = None
) -> np.ndarray:
    """Facility power with no accelerator busy, kW: base load and idle accelerators x PUE."""
    return pue * _standing_it_kw(fleet, powered)


def busy_accelerator_kw(fleet: FleetStatic, pue: np.ndarray) -> np.ndarray:
    """Facility power one more busy accelerator adds to an idle one, kW: PUE x (busy - idle)."""
    return pue * fleet.busy_extra_kw


def battery_discharge_room_kw(fleet: FleetStatic, soc_kwh: np.ndarray, step_h: float) -> np.ndarray:
    """Power each battery can deliver over the next ``step_h`` hours, kW: its discharge limit,
    or what the energy above its minimum (kWh) gives after discharge losses, if less."""
    above_min = np.maximum(soc_kwh - fleet.battery_min_kwh, 0.0)
    return np.minimum(fleet.battery_discharge_kw, above_min * fleet.battery_discharge_eff / step_h)
