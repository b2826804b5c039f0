"""Prometheus metrics of the service (``GET /metrics``, for tokens with the ``metrics`` scope:
series carry every tenant's service keys), on a registry of its own.

With several API worker processes (``api.workers`` > 1) the service runs prometheus_client in
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set before any process imports it): counters
and histograms are summed over the processes, and gauges report the most recent value any
process set, so whichever worker answers a scrape tells the same story.
"""

from __future__ import annotations

import os
from functools import partial

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from wattroute.runtime.executor import StepReport
from wattroute.runtime.records import TickRecord
from wattroute.service.readiness import CAUSES, Readiness

SOURCES = {
    "grid": "grid_import_kw",
    "solar": "solar_kw",
    "wind": "wind_kw",
    "genset": "genset_kw",
    "battery_discharge": "battery_discharge_kw",
    "battery_charge": "battery_charge_kw",
    "export": "export_kw",
    "curtailed": "curtailed_kw",
}


class ServiceMetrics:
    """Fleet, controller and API metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        gauge = partial(Gauge, multiprocess_mode="mostrecent")
        self.power = gauge(
            "wattroute_site_power_kw",
            "Mean power over the last step, kW",
            ["site", "source"],
            registry=r,
        )
        self.load = gauge(
            "wattroute_site_load_kw",
            "Facility load served over the last step, kW",
            ["site"],
            registry=r,
        )
        self.price = gauge(
            "wattroute_site_price_usd_per_mwh", "Grid price in force, USD/MWh", ["site"], registry=r
        )
        self.carbon = gauge(
            "wattroute_site_carbon_g_per_kwh",
            "Grid carbon intensity in force, gCO2eq/kWh",
            ["site"],
            registry=r,
        )
        self.battery = gauge(
            "wattroute_site_battery_kwh", "Battery energy, kWh", ["site"], registry=r
        )
        self.accelerators = gauge(
            "wattroute_site_busy_accelerators", "Busy accelerators", ["site", "kind"], registry=r
        )
        self.jobs = gauge(
            "wattroute_jobs",
            "Batch jobs by state (queued is the queue depth)",
            ["state"],
            registry=r,
        )
        self.decision = Histogram(
            "wattroute_decision_seconds",
            "Time the policy took to decide, s",
            registry=r,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.ticks = Counter("wattroute_ticks_total", "Planning ticks", registry=r)
        self.degraded = gauge("wattroute_degraded", "1 while planning on stale signals", registry=r)
        self.lag = gauge(
            "wattroute_controller_lag_seconds",
            "How far the controller trails the clock, s of fleet time",
            registry=r,
        )
        self.ready = gauge("wattroute_ready", "1 when /readyz answers ready, else 0", registry=r)
        self.not_ready = gauge(
            "wattroute_not_ready",
            "1 for each cause that keeps the service from being ready "
            "(database, not_started, silent, waiting, lagging, finished, degraded)",
            ["cause"],
            registry=r,
        )
        self.requests = Counter(
            "wattroute_inference_requests_total", "Inference requests", registry=r
        )
        self.violations = Counter(
            "wattroute_slo_violations_total", "Requests served late or dropped", registry=r
        )
        self.cost = Counter("wattroute_cost_usd_total", "Energy cost, USD", registry=r)
        self.emissions = Counter("wattroute_emissions_kg_total", "Emissions, kg CO2eq", registry=r)
        self.inference_latency = Histogram(
            "wattroute_inference_latency_seconds",
            "End-to-end latency of gateway requests (emulated network included), s; "
            "service is tenant/name",
            ["service"],
            registry=r,
            buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5),
        )
        self.inference_answers = Counter(
            "wattroute_gateway_requests_total",
            "Gateway requests answered, by site and whether within the SLO",
            ["service", "site", "within_slo"],
            registry=r,
        )
        self.compliance = Histogram(
            "wattroute_grid_event_compliance_seconds",
            "Wall time from a grid event taking effect to the site's load within its cap, s",
            registry=r,
            buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60),
        )
        self.power_drop_compliance = Histogram(
            "wattroute_power_drop_compliance_seconds",
            "Wall time from a meter reading lowering a site's generation to the site's load "
            "within what it can draw, s",
            registry=r,
            buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60),
        )
        self.corrections = Counter(
            "wattroute_corrections_total",
            "Re-decisions between ticks (grid events, overrides, lost sites, meter readings)",
            registry=r,
        )
        self.http = Histogram(
            "wattroute_http_request_seconds",
            "API latency, s",
            ["method", "route", "status"],
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
        )

    def on_tick(self, tick: TickRecord, report: StepReport | None) -> None:
        """Update the fleet and controller gauges from a committed tick."""
        self.ticks.inc()
        self.decision.observe(tick.decision_s)
        self.degraded.set(1.0 if tick.degraded else 0.0)
        for site, values in tick.outcome.get("sites", {}).items():
            for source, flow in SOURCES.items():
                self.power.labels(site, source).set(values.get(flow, 0.0))
            self.load.labels(site).set(values.get("load_kw", 0.0))
            self.price.labels(site).set(values.get("price_usd_per_mwh", 0.0))
            self.carbon.labels(site).set(values.get("carbon_g_per_kwh", 0.0))
            self.battery.labels(site).set(values.get("soc_kwh", 0.0))
            self.accelerators.labels(site, "batch").set(values.get("batch_accelerators", 0.0))
            self.accelerators.labels(site, "inference").set(
                values.get("inference_accelerators", 0.0)
            )
            self.cost.inc(max(values.get("cost_usd", 0.0), 0.0))
            self.emissions.inc(max(values.get("emissions_kg", 0.0), 0.0))
        requests = float(tick.outcome.get("requests", 0.0))
        self.requests.inc(requests)
        self.violations.inc(max(requests - float(tick.outcome.get("within_slo", 0.0)), 0.0))

    def on_notice(self, kind: str, fields: dict[str, object]) -> None:
        """Count corrections and time compliance, as the controller reports them."""
        if kind == "correction":
            self.corrections.inc()
        elif kind == "compliance":
            seconds = fields.get("seconds")
            if isinstance(seconds, int | float):
                histogram = (
                    self.power_drop_compliance
                    if fields.get("cause") == "power drop"
                    else self.compliance
                )
                histogram.observe(float(seconds))

    def set_readiness(self, verdict: Readiness) -> None:
        self.ready.set(1.0 if verdict.ready else 0.0)
        for cause in CAUSES:
            self.not_ready.labels(cause).set(1.0 if cause in verdict.causes else 0.0)

    def set_jobs(self, counts: dict[str, int]) -> None:
        for state in ("queued", "running", "paused", "completed", "cancelled", "failed"):
            self.jobs.labels(state).set(counts.get(state, 0))

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)
