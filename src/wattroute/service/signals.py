"""Live signal sources from the service configuration: each provider's client (endpoint,
timeout, retries, request budget, credentials), each site's ordered sources, and the checks
a configuration must pass before it runs (a required signal with no source; carbon
intensities of different kinds in one objective).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from wattroute.errors import InputError
from wattroute.runtime.clock import Clock
from wattroute.runtime.providers.http import (
    ApiClient,
    Credentials,
    RequestBudget,
    RetryPolicy,
    Secret,
)
from wattroute.runtime.providers.live import LiveOptions, LiveProvider, SignalStore
from wattroute.runtime.providers.source import Source
from wattroute.scenario.schema import SiteSpec
from wattroute.service.config import (
    LiveSignalsConfig,
    ProviderSettings,
    ServiceConfig,
    SourceSpec,
)

SIGNAL_OF = {"carbon": "carbon_g_per_kwh", "price": "price_usd_per_mwh"}


@dataclass
class Clients:
    """One HTTP client per provider, built on first use (so a provider nobody names needs no
    credentials), sharing its request budget between every source that uses it."""

    live: LiveSignalsConfig
    credentials: Credentials
    transport: Callable[[str], httpx.BaseTransport | None] = lambda provider: None
    _made: dict[str, ApiClient] = field(default_factory=dict)
    _budgets: dict[str, RequestBudget] = field(default_factory=dict)

    def settings(self, provider: str) -> ProviderSettings:
        return self.live.providers.get(provider, ProviderSettings())  # type: ignore[call-overload]

    def secret(self, provider: str, what: str, default_name: str) -> Secret:
        name = getattr(self.settings(provider), what) or default_name
        return self.credentials.get(name, f"signals.providers.{provider}.{what}")

    def budget(self, provider: str, per_minute: int | None = None) -> RequestBudget:
        """The provider's request budget, one for all its clients (``per_minute`` when the
        settings give none)."""
        if provider not in self._budgets:
            s = self.settings(provider)
            self._budgets[provider] = RequestBudget(
                s.requests_per_minute or per_minute, s.requests_per_month
            )
        return self._budgets[provider]

    def client(
        self, key: str, make: Callable[[ProviderSettings], ApiClient], provider: str = ""
    ) -> ApiClient:
        """The client kept under ``key``, made from ``provider``'s settings (``key``'s if
        not given) the first time."""
        if key not in self._made:
            self._made[key] = make(self.settings(provider or key))
        return self._made[key]

    def api_client(self, key: str, default_url: str, provider: str = "") -> ApiClient:
        """A plain :class:`ApiClient` from the provider's settings."""
        name = provider or key

        def make(s: ProviderSettings) -> ApiClient:
            return ApiClient(
                name,
                s.base_url or default_url,
                timeout_s=s.timeout_s,
                retry=RetryPolicy(attempts=s.attempts),
                budget=self.budget(name),
                transport=self.transport(name),
            )

        return self.client(key, make, name)

    def close(self) -> None:
        for client in self._made.values():
            client.close()


def _source(spec: SourceSpec, clients: Clients, where: str) -> Source:
    """The adapter for one configured source."""
    if spec.source == "electricitymaps":
        from wattroute.runtime.providers import electricitymaps as em

        token = clients.secret("electricitymaps", "token", "ELECTRICITYMAPS_TOKEN")
        client = clients.api_client("electricitymaps", em.DEFAULT_BASE_URL)
        assert spec.zone is not None
        return em.ElectricityMapsCarbon(spec.zone, token, client, scope=spec.scope)
    if spec.source == "watttime":
        from wattroute.runtime.providers import watttime as wt

        settings = clients.settings("watttime")
        if not settings.username:
            raise InputError(
                "signals.providers.watttime.username",
                "WattTime needs the account's user name.",
                "set signals.providers.watttime.username.",
            )
        password = clients.secret("watttime", "password", "WATTTIME_PASSWORD")
        client = clients.api_client("watttime", wt.DEFAULT_BASE_URL)
        assert spec.region is not None
        return wt.WattTimeMarginal(spec.region, settings.username, password, client)
    if spec.source == "entsoe":
        from wattroute.runtime.providers import entsoe_area as ee

        token = clients.secret("entsoe", "token", "ENTSOE_API_KEY")
        client = clients.client(
            "entsoe",
            lambda s: ee.entsoe_client(
                token,
                base_url=s.base_url or ee.ENTSOE_API,
                timeout_s=s.timeout_s,
                retry=RetryPolicy(attempts=s.attempts),
                budget=clients.budget("entsoe", per_minute=400),
                transport=clients.transport("entsoe"),
            ),
        )
        assert spec.area is not None
        if where.endswith(".price"):
            assert clients.live.usd_per_eur is not None
            return ee.EntsoePrices(
                client, token, spec.area, usd_per_eur=clients.live.usd_per_eur, field=where
            )
        return ee.EntsoeMixCarbon(client, token, spec.area, field=where)
    from wattroute.runtime.providers import gridstatus_iso as gi

    assert spec.iso is not None
    assert spec.node is not None
    settings = clients.settings("gridstatus")
    key = None
    if spec.iso == "PJM":
        key = clients.secret("gridstatus", "token", "PJM_API_KEY")
    return gi.IsoPrices(
        gi.iso_client(spec.iso, pjm_api_key=key, field=where),
        spec.iso,
        spec.node,
        market=spec.market,
        budget=clients.budget("gridstatus"),
        retry=RetryPolicy(attempts=settings.attempts),
        field=where,
    )


def _weather(spec: SiteSpec, clients: Clients, live: LiveSignalsConfig) -> list[Source]:
    from wattroute.runtime.providers import openmeteo as om

    settings = clients.settings("openmeteo")
    apikey = clients.secret("openmeteo", "token", "OPENMETEO_API_KEY") if settings.token else None
    url = settings.base_url or (om.COMMERCIAL_URL if apikey else om.PUBLIC_URL)
    # a client per site; the provider's request budget is shared by all of them
    client = clients.api_client(f"openmeteo:{spec.name}", url, provider="openmeteo")
    weather = om.OpenMeteoWeather(
        spec.latitude,
        spec.longitude,
        client,
        apikey=apikey,
        forecast_days=max(1, min(16, int(np.ceil(live.horizon_days)))),
        past_days=max(0, min(92, int(np.ceil(live.lookback_days)))),
        # the site's solar, wind and PUE share one answer; each refresh asks anew
        max_age_s=live.refresh_minutes * 60.0 * 0.9,
    )
    return om.weather_sources(spec, weather)


def build_sources(config: ServiceConfig, clients: Clients) -> dict[tuple[str, int], list[Source]]:
    """Per ``(signal, site index)`` the configured sources, in order; refused if a required
    signal of a grid-connected site has none, or carbon kinds are mixed."""
    live = config.spec.signals
    assert isinstance(live, LiveSignalsConfig)
    specs = {site.name: site for site in config.spec.fleet.sites}
    names = [site.name for site in config.scenario.sites]
    chains: dict[tuple[str, int], list[Source]] = {}
    for i, name in enumerate(names):
        wanted = live.sites.get(name)
        grid = config.scenario.sites[i].grid is not None
        for what in live.required:
            if grid and (wanted is None or not getattr(wanted, what)):
                raise InputError(
                    f"signals.sites.{name}.{what}",
                    f"the grid-connected site {name} has no source for its {what}.",
                    f"list one or more sources under signals.sites.{name}.{what}, or remove "
                    f"{what} from signals.required.",
                )
        if wanted is None:
            continue
        for what in ("carbon", "price"):
            where = f"signals.sites.{name}.{what}"
            sources = [_source(s, clients, where) for s in getattr(wanted, what)]
            if sources:
                chains[(SIGNAL_OF[what], i)] = sources
        if wanted.weather == "openmeteo":
            for source in _weather(specs[name], clients, live):
                chains.setdefault((source.signal, i), []).append(source)
    _check_kinds(chains, names, config.scenario.carbon_intensity_kind, live)
    return chains


def _check_kinds(
    chains: Mapping[tuple[str, int], list[Source]],
    names: list[str],
    basis: str,
    live: LiveSignalsConfig,
) -> None:
    """One kind of carbon intensity in the objective: the fleet's basis (average or
    marginal) and one scope (lifecycle or direct), unless mixing is allowed."""
    if live.allow_mixed_kinds:
        return
    kinds = {
        (names[i], s.provider): s.kind
        for (signal, i), sources in chains.items()
        if signal == "carbon_g_per_kwh"
        for s in sources
    }
    wrong = sorted(
        f"{site} ({p}: {k})" for (site, p), k in kinds.items() if k.split("/")[0] != basis
    )
    if wrong:
        raise InputError(
            "signals.sites",
            f"the fleet's objective counts {basis} carbon intensity, but these sources give "
            f"another kind: {', '.join(wrong)}.",
            f"use {basis} sources, set fleet.carbon_intensity to match, or set "
            "signals.allow_mixed_kinds: true.",
        )
    scopes = sorted({k.split("/")[1] for k in kinds.values() if "/" in k})
    if len(scopes) > 1:
        raise InputError(
            "signals.sites",
            f"carbon sources mix {' and '.join(scopes)} emission factors in one objective.",
            "use one scope (e.g. scope: lifecycle on every Electricity Maps source), or set "
            "signals.allow_mixed_kinds: true.",
        )


def build_live_provider(
    config: ServiceConfig,
    clock: Clock,
    store: SignalStore | None = None,
    transport: Callable[[str], httpx.BaseTransport | None] | None = None,
) -> tuple[LiveProvider, Clients]:
    """The live provider a configuration describes, reading back what ``store`` kept."""
    live = config.spec.signals
    assert isinstance(live, LiveSignalsConfig)
    secrets = None
    if live.secrets_file:
        secrets = Path(live.secrets_file)
        secrets = secrets if secrets.is_absolute() else config.folder / secrets
    clients = Clients(live, Credentials(secrets), transport or (lambda provider: None))
    chains = build_sources(config, clients)
    sc = config.scenario
    defaults = {"pue": np.array([site.pue.base for site in sc.sites])}
    provider = LiveProvider(
        chains,
        [site.name for site in sc.sites],
        sc.start,
        sc.step,
        sc.n_steps,
        clock,
        defaults=defaults,
        store=store,
        options=LiveOptions(
            refresh=pd.Timedelta(minutes=live.refresh_minutes),
            stale_after=pd.Timedelta(hours=live.stale_after_hours),
            lookback=pd.Timedelta(days=live.lookback_days),
            horizon=pd.Timedelta(days=live.horizon_days),
        ),
    )
    return provider, clients
