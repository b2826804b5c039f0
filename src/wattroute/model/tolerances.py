"""Named numerical tolerances, shared by every layer.

Quantities that are equal on paper (a load and the supply that exactly covers it, a job's work
and the hours it ran) come out of floating-point arithmetic a few units in the last place
apart; comparisons allow for that with :data:`ROUNDING`. Solver output and energy bookkeeping
have looser, separately named tolerances.
"""

ROUNDING = 1e-9
"""Slack for float rounding when comparing kW, kWh, accelerators, hours or steps that should be
equal (dimension of whatever it is added to)."""

PLAN_FLOW_TOLERANCE_KW = 1e-3
"""A planned power flow below this, kW, is solver noise: the plan does not use that source."""

BALANCE_RELATIVE = 1e-6
"""Relative slack of the energy-balance and limit checks: of the flows through a site, or of
1 kW when they are smaller (:func:`wattroute.sim.dispatch.check_energy_balance`)."""

BALANCE_ABSOLUTE_KW = 1e-6
"""Absolute slack of the energy-balance and limit checks, kW."""


def within_kw(value_kw: float, limit_kw: float) -> bool:
    """Whether a power is at most a limit, kW, up to the balance checks' slack (relative and
    absolute): how a grid event's cap or a site's supply is judged met."""
    return value_kw <= limit_kw * (1 + BALANCE_RELATIVE) + BALANCE_ABSOLUTE_KW
