"""``wattroute signals check``: ask every configured source once and say what answered."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import httpx
from rich.console import Console

from wattroute.errors import InputError
from wattroute.runtime.clock import Clock, RealClock
from wattroute.service.config import LiveSignalsConfig, load_service_config

EXIT_MISSING = 1


def check(
    args: argparse.Namespace,
    console: Console,
    clock: Clock | None = None,
    transport: Callable[[str], httpx.BaseTransport | None] | None = None,
) -> int:
    """Fetch every chain once; print per site and signal the source that answered, the
    latest value and its age, the kind, the next publication and each failing source's
    error. Exit 1 when a required signal of a grid-connected site has no value."""
    from wattroute.service.signals import SIGNAL_OF, build_live_provider

    config = load_service_config(args.config)
    live = config.spec.signals
    if not isinstance(live, LiveSignalsConfig):
        raise InputError(
            "signals.provider",
            "this configuration replays recorded signals; there is no live source to check.",
            "use a configuration with signals.provider: live (see examples/live.yaml).",
        )
    clock = clock or RealClock()
    provider, clients = build_live_provider(config, clock, None, transport)
    try:
        provider.refresh(force=True)
        rows = provider.report()
    finally:
        clients.close()
    failures = []
    for row in rows:
        latest, age = row["latest"], row["age_s"]
        parts = [
            f"{row['site']} {row['signal']}:",
            f"{latest:,.2f}" if isinstance(latest, float) else "no value",
            f"from {row['source']} ({row['kind']})" if row["source"] else "",
            f"age {_age(age)}" if isinstance(age, float) else "",
            f"next publication {row['next_publication']}" if row["next_publication"] else "",
        ]
        console.print(" ".join(p for p in parts if p), markup=False, soft_wrap=True)
        errors = row["errors"]
        assert isinstance(errors, dict)
        for source, error in errors.items():
            failures.append(f"{row['site']} {row['signal']} {source}: {error}")
    for line in failures:
        console.print(f"failed: {line}", markup=False, soft_wrap=True)
    grid_sites = {s.name for s in config.scenario.sites if s.grid is not None}
    required = {SIGNAL_OF[what] for what in live.required}
    missing = [
        f"{row['site']} {row['signal']}"
        for row in rows
        if row["site"] in grid_sites and row["signal"] in required and row["latest"] is None
    ]
    if missing:
        console.print(f"no value from any source: {', '.join(missing)}", markup=False)
        return EXIT_MISSING
    return 0


def _age(seconds: float) -> str:
    if not math.isfinite(seconds):
        return ""
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"
