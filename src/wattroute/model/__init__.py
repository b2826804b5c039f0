"""The domain model: sites, power sources, workloads, network and scenario (dataclasses only).

Every class checks its values when built and raises :class:`~wattroute.errors.ScenarioError`
("field: problem. Fix: what to do"), as a scenario file's loader does, so that an object built
in code cannot hold what a file may not (a negative count, a NaN price, a deadline before the
arrival). The checks compare a few numbers; signals are checked once per site or service.

Fields are named by their path in a :class:`Scenario`, with the attribute names of these
classes and an entry of a list keyed by its name: ``sites[paris].base_it_kw``,
``jobs[train-7].deadline``, ``services[vision].demand[factory].rate_rps``. A part is named from
the attribute that holds it, as it cannot know its owner: ``accelerators.count``,
``pue.maximum``, ``grid.import_limit_kw``, ``battery.initial_soc``, ``genset.capacity_kw``,
``renewable.profile`` (a site's solar or wind), ``fibre.base_ms``, ``network.matrix_ms[DE, GB]``,
``penalties.slo_violation_usd_per_request``. Rules across entries are the scenario's own:
``sites[2].name`` (a name used twice, by position), ``jobs[j].allowed_sites``,
``services[v].demand[p].point``, ``end``. The loader names the same fields by their place in
the file (``sites[0].grid.carbon``, ``inference_services[1].service_time_ms``).

A signal is read by step index from the scenario's start, so it needs at least one value per
step (later values are not read). A job arrives within the period and its deadline follows its
arrival; a deadline after the end, or too soon for the work, is allowed here (the simulator
charges the work undone) though a scenario file may not have one.
"""

from wattroute.model.fleet import (
    AcceleratorPool,
    Battery,
    Genset,
    GridConnection,
    Pue,
    Renewable,
    Site,
)
from wattroute.model.network import FibreModel, Network, great_circle_km
from wattroute.model.scenario import Penalties, Scenario
from wattroute.model.workloads import BatchJob, Demand, DemandPoint, InferenceService

__all__ = [
    "AcceleratorPool",
    "BatchJob",
    "Battery",
    "Demand",
    "DemandPoint",
    "FibreModel",
    "Genset",
    "GridConnection",
    "InferenceService",
    "Network",
    "Penalties",
    "Pue",
    "Renewable",
    "Scenario",
    "Site",
    "great_circle_km",
]
