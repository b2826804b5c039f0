"""The interface every live source implements, one per provider, site and signal.

A source fetches one signal for one place (a zone, a node, a site's coordinates) over a
period, and returns a :class:`~wattroute.runtime.providers.values.Fetched` series in the
controller's units with its kind. It raises a
:class:`~wattroute.runtime.providers.http.ProviderError` when it cannot answer, so that the
chain of sources behind it (:mod:`wattroute.runtime.providers.live`) falls back to the next.
"""

from __future__ import annotations

from typing import Protocol

import pandas as pd

from wattroute.runtime.providers.values import Fetched


class Source(Protocol):
    """One signal at one place from one provider."""

    @property
    def provider(self) -> str:
        """The provider's name: ``electricitymaps``, ``watttime``, ``entsoe``, ..."""
        ...

    @property
    def signal(self) -> str:
        """The signal it gives (``carbon_g_per_kwh``, ``price_usd_per_mwh``, ``solar_kw``,
        ``wind_kw``, ``pue``, ``export_price_usd_per_mwh``)."""
        ...

    @property
    def kind(self) -> str:
        """What its values mean (:mod:`wattroute.runtime.providers.values`)."""
        ...

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp) -> Fetched:
        """Values for the intervals that start in ``[start, end)`` (UTC): observed or published
        values up to what the provider has, forecasts after it where it gives them.

        Raises
        ------
        wattroute.runtime.providers.http.ProviderError
            When it cannot answer (the chain then falls back).
        """
        ...

    def next_publication(self, now: pd.Timestamp) -> pd.Timestamp | None:
        """When the provider next publishes new values (a day-ahead auction's result), if it
        publishes on a schedule; ``None`` for a continuous feed."""
        ...
