"""The time-stepped simulator: dispatch, inference, jobs, repair and the summary."""

from wattroute.sim.simulator import RunRecord, SimulationOptions, Simulator, simulate
from wattroute.sim.summary import job_frame, summarize

__all__ = ["RunRecord", "SimulationOptions", "Simulator", "job_frame", "simulate", "summarize"]
