"""The domain model: sites, power sources, workloads, network and scenario (dataclasses only)."""

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
