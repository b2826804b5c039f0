"""Signal providers: where the live controller gets prices, carbon and renewables from.

:mod:`~wattroute.runtime.providers.replay` replays recorded signals; the live sources
(Electricity Maps, WattTime, ENTSO-E, US ISOs through gridstatus, Open-Meteo weather
forecasts) fetch them from the providers' APIs and feed the same interface through
:class:`~wattroute.runtime.providers.live.LiveProvider`.
"""

from wattroute.runtime.providers.replay import (
    SIGNAL_NAMES,
    ReplayProvider,
    SignalProvider,
    WithholdingProvider,
)

__all__ = ["SIGNAL_NAMES", "ReplayProvider", "SignalProvider", "WithholdingProvider"]
