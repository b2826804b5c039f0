"""The live controller and what it talks to: clocks, signal providers, executors, the store."""

from wattroute.runtime.clock import Clock, ManualClock, RealClock, ReplayClock
from wattroute.runtime.controller import Controller, ControllerOptions, build_controller
from wattroute.runtime.executor import Allocation, Executor, SimulatedExecutor, StepReport
from wattroute.runtime.providers import ReplayProvider, SignalProvider, WithholdingProvider
from wattroute.runtime.records import (
    GridEventRecord,
    JobRecord,
    MemoryStore,
    ServiceRecord,
    SiteOverride,
    SiteReading,
    Store,
    TickRecord,
)

__all__ = [
    "Allocation",
    "Clock",
    "Controller",
    "ControllerOptions",
    "Executor",
    "GridEventRecord",
    "JobRecord",
    "ManualClock",
    "MemoryStore",
    "RealClock",
    "ReplayClock",
    "ReplayProvider",
    "ServiceRecord",
    "SignalProvider",
    "SimulatedExecutor",
    "SiteOverride",
    "SiteReading",
    "StepReport",
    "Store",
    "TickRecord",
    "WithholdingProvider",
    "build_controller",
]
