"""ENTSO-E Transparency Platform: day-ahead prices and the generation mix of a bidding zone.

Both sources send their requests through :class:`~wattroute.runtime.providers.http.ApiClient`
(timeouts, retries, ``Retry-After``, the shared request budget, the token hidden in every
error and log line) and leave to ``entsoe-py`` what it does well: naming areas
(``DE_LU`` or the EIC code ``10Y1001A1001A82H``) and reading the XML documents.

The API (``GET https://web-api.tp.entsoe.eu/api?securityToken=...&documentType=...``)
answers with a ``Publication_MarketDocument`` (prices, A44) or a ``GL_MarketDocument``
(generation, A75), or with an ``Acknowledgement_MarketDocument`` whose ``Reason/text`` says
why there is nothing: "No matching data found" for a period not (yet) published, which is
an empty answer here, not an error. The acknowledgement comes as HTTP 200, or as HTTP 400
from older deployments of the API; :func:`entsoe_client` builds a client that reads the
latter too. An invalid token is HTTP 401 (:class:`~wattroute.runtime.providers.http.AuthError`).
"""

from __future__ import annotations

import math
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np
import pandas as pd
from bs4 import XMLParsedAsHTMLWarning
from entsoe import mappings as _entsoe_mappings
from entsoe import parsers as _entsoe_parsers

from wattroute.errors import InputError
from wattroute.runtime.providers.http import (
    ApiClient,
    PayloadError,
    RequestBudget,
    RetryPolicy,
    Secret,
)
from wattroute.runtime.providers.values import Fetched, as_utc, carbon_kind

__all__ = [
    "ENTSOE_API",
    "LIFECYCLE_G_PER_KWH",
    "EntsoeMixCarbon",
    "EntsoePrices",
    "entsoe_client",
    "resolve_area",
]

PROVIDER = "entsoe"
ENTSOE_API = "https://web-api.tp.entsoe.eu/api"
NO_DATA = "No matching data found"

#: Day-ahead (SDAC) results appear at about 12:45 Brussels time, every day.
PUBLICATION_TZ = "Europe/Brussels"
PUBLICATION_TIME = (12, 45)

#: Areas whose A44 answer carries more than one auction; position 1 is the SDAC result
#: (as ``entsoe-py`` asks for it).
_SEQUENCED_AREAS = frozenset({"DE_LU", "AT"})

_parse_prices: Callable[[str], Mapping[str, pd.Series]] = _entsoe_parsers.parse_prices
_parse_generation: Callable[[str], pd.DataFrame | pd.Series] = _entsoe_parsers.parse_generation
_lookup_area: Callable[[str], Any] = _entsoe_mappings.lookup_area
_PSR_NAMES: Mapping[str, str] = _entsoe_mappings.PSRTYPE_MAPPINGS

#: Lifecycle emission factor per ENTSO-E production type (``psrType``), gCO2eq/kWh.
#: ``None``: not generation, left out of the mix (see :class:`EntsoeMixCarbon`).
LIFECYCLE_G_PER_KWH: Mapping[str, float | None] = {
    "B01": 230.0,  # Biomass: AR5 biomass (dedicated)
    "B02": 820.0,  # Fossil Brown coal/Lignite: AR5 coal (pulverised)
    "B03": 820.0,  # Fossil Coal-derived gas: AR5 coal (its carbon is the coal's)
    "B04": 490.0,  # Fossil Gas: AR5 gas (combined cycle)
    "B05": 820.0,  # Fossil Hard coal: AR5 coal (pulverised)
    "B06": 650.0,  # Fossil Oil: UK POST, "Carbon footprint of electricity generation" (2006)
    "B07": 820.0,  # Fossil Oil shale: AR5 coal (a solid fuel burnt in boilers like coal)
    "B08": 820.0,  # Fossil Peat: AR5 coal (idem)
    "B09": 38.0,  # Geothermal: AR5 geothermal
    "B10": 24.0,  # Hydro Pumped Storage (generation only): AR5 hydropower
    "B11": 24.0,  # Hydro Run-of-river and poundage: AR5 hydropower
    "B12": 24.0,  # Hydro Water Reservoir: AR5 hydropower
    "B13": 17.0,  # Marine: AR5 ocean (tidal and wave)
    "B14": 12.0,  # Nuclear: AR5 nuclear
    "B15": 230.0,  # Other renewable: AR5 biomass (dedicated), mostly biogas
    "B16": 48.0,  # Solar: AR5 solar PV (utility scale; rooftop is 41)
    "B17": 230.0,  # Waste: AR5 biomass (dedicated)
    "B18": 12.0,  # Wind Offshore: AR5 wind offshore
    "B19": 11.0,  # Wind Onshore: AR5 wind onshore
    "B20": 490.0,  # Other: AR5 gas (combined cycle), an assumed fossil mix
    "B21": None,  # AC Link
    "B22": None,  # DC Link
    "B23": None,  # Substation
    "B24": None,  # Transformer
    "B25": None,  # Energy storage (re-delivers energy generated earlier)
}

_CODE_OF_NAME = {name: code for code, name in _PSR_NAMES.items()}


# -- the client ---------------------------------------------------------------------------


class _AcknowledgementTransport(httpx.BaseTransport):
    """Turns an HTTP 400 that only says "No matching data found" into the HTTP 200 the
    current API sends for it, so both read as an empty answer."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if response.status_code != 400:
            return response
        body = response.read()
        response.close()
        kind = response.headers.get("content-type", "application/xml")
        status = 200 if _is_no_data(body) else 400
        return httpx.Response(status, headers={"content-type": kind}, content=body, request=request)

    def close(self) -> None:
        self._inner.close()


def _is_no_data(body: bytes) -> bool:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return False
    return _local(root.tag) == "Acknowledgement_MarketDocument" and NO_DATA in _reason(root)


def entsoe_client(
    token: Secret,
    *,
    base_url: str = ENTSOE_API,
    timeout_s: float = 30.0,
    retry: RetryPolicy | None = None,
    budget: RequestBudget | None = None,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] | None = None,
) -> ApiClient:
    """An :class:`ApiClient` for the Transparency Platform, with ``token`` registered as a
    secret and HTTP 400 "No matching data found" acknowledgements read as empty answers.

    Parameters
    ----------
    token
        The platform's security token.
    base_url
        The API's URL (the document path is empty: everything is in the query).
    timeout_s
        Per request, seconds (the platform is slow on long periods).
    retry, budget, sleep
        As for :class:`ApiClient`; the platform allows 400 requests a minute per token.
    transport
        The transport underneath (``httpx.MockTransport`` in tests).
    """
    inner = transport if transport is not None else httpx.HTTPTransport()
    kwargs: dict[str, Any] = {}
    if sleep is not None:
        kwargs["sleep"] = sleep
    client = ApiClient(
        PROVIDER,
        base_url,
        timeout_s=timeout_s,
        retry=retry,
        budget=budget or RequestBudget(per_minute=400),
        transport=_AcknowledgementTransport(inner),
        secrets=(token,),
        **kwargs,
    )
    return client


# -- areas, times, documents --------------------------------------------------------------


def resolve_area(area: str, field: str = "signals.entsoe.area") -> tuple[str, str]:
    """The ``(name, EIC code)`` of an ENTSO-E area given by either, e.g. ``DE_LU`` or
    ``10Y1001A1001A82H``.

    Raises
    ------
    InputError
        If ``entsoe-py`` knows no such area.
    """
    try:
        found = _lookup_area(area.strip())
    except ValueError:
        raise InputError(
            field,
            f"{area!r} is not an ENTSO-E area.",
            "name a bidding zone as entsoe-py's Area does (DE_LU, FR, NL, IT_NORD, ...) or "
            "give its EIC code (10Y1001A1001A82H).",
        ) from None
    return str(found.name), str(found.value)


def _period(start: pd.Timestamp, end: pd.Timestamp) -> dict[str, str]:
    """``periodStart``/``periodEnd`` (``yyyyMMddHHmm``, UTC) covering ``[start, end)`` in
    whole hours."""
    first = start.floor("h")
    last = end.ceil("h")
    return {"periodStart": first.strftime("%Y%m%d%H%M"), "periodEnd": last.strftime("%Y%m%d%H%M")}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _reason(root: ET.Element) -> str:
    texts = [el.text or "" for el in root.iter() if _local(el.tag) == "text"]
    return " ".join(t.strip() for t in texts if t.strip())


def _document(text: str, expected: str, what: str, token: Secret) -> tuple[ET.Element | None, str]:
    """The root of an answer of type ``expected``, or ``None`` for a "no data"
    acknowledgement.

    Raises
    ------
    PayloadError
        Not XML, another acknowledgement, or another document type.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        raise PayloadError(
            PROVIDER, f"answered the {what} request with a body that is not XML"
        ) from None
    name = _local(root.tag)
    if name == "Acknowledgement_MarketDocument":
        reason = _reason(root).replace(token.reveal(), "***") if token.reveal() else _reason(root)
        if NO_DATA in reason:
            return None, text
        raise PayloadError(
            PROVIDER, f"refused the {what} request: {reason[:300] or 'no reason given'}"
        )
    if name != expected:
        raise PayloadError(PROVIDER, f"answered the {what} request with a {name}, not {expected}")
    return root, text


@contextmanager
def _quiet_parser() -> Iterator[None]:
    """``entsoe-py`` reads XML with BeautifulSoup's HTML parser, which warns each time."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        yield


def _fields(root: ET.Element, name: str) -> set[str]:
    return {(el.text or "").strip() for el in root.iter() if _local(el.tag) == name}


# -- day-ahead prices ---------------------------------------------------------------------


class EntsoePrices:
    """Day-ahead (SDAC) prices of one bidding zone, USD/MWh.

    ENTSO-E publishes them in EUR/MWh; they are converted at ``usd_per_eur``. Hourly
    (``PT60M``) and quarter-hourly (``PT15M``, DE-LU and most zones since the SDAC went to
    15 minutes on 2025-10-01) answers are both read; a period that mixes them is given at
    the finer resolution, an hourly price repeated on each of its quarters. Positions left
    out of an ``A03`` curve repeat the previous price (``entsoe-py`` fills them); a position
    missing from an ``A01`` curve is a gap (NaN).

    Parameters
    ----------
    client
        The shared ENTSO-E client (:func:`entsoe_client`); the token is registered with it.
    token
        The platform's security token.
    area
        The bidding zone: ``entsoe-py``'s name (``DE_LU``) or its EIC code.
    usd_per_eur
        Conversion rate, USD per EUR (> 0).
    path
        Path under the client's base URL (empty: the base URL is the endpoint).
    field
        The config field that names the area, for errors.

    Raises
    ------
    ValueError
        If ``usd_per_eur`` is not a positive finite number.
    InputError
        If the area is unknown.
    """

    provider = PROVIDER
    signal = "price_usd_per_mwh"
    kind = "day-ahead"

    def __init__(
        self,
        client: ApiClient,
        token: Secret,
        area: str,
        *,
        usd_per_eur: float,
        path: str = "",
        field: str = "signals.entsoe.area",
    ) -> None:
        rate = float(usd_per_eur)
        if not math.isfinite(rate) or rate <= 0:
            raise ValueError(f"usd_per_eur must be a positive number, got {usd_per_eur!r}")
        self.usd_per_eur = rate
        self.area, self.eic = resolve_area(area, field)
        self._client = client
        self._token = token
        self._path = path
        client.add_secret(token)

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp) -> Fetched:
        """Prices for the intervals starting in ``[start, end)``, USD/MWh, all published
        (``forecast`` False); empty if the platform has none for the period yet."""
        start, end, now = as_utc(start), as_utc(end), as_utc(now)
        params: dict[str, str] = {
            "securityToken": self._token.reveal(),
            "documentType": "A44",
            "in_Domain": self.eic,
            "out_Domain": self.eic,
            "contract_MarketAgreement.type": "A01",
            **_period(start, end),
        }
        if self.area in _SEQUENCED_AREAS:
            params["classificationSequence_AttributeInstanceComponent.position"] = "1"
        response = self._client.get(self._path, params=params)
        root, text = _document(response.text, "Publication_MarketDocument", "price", self._token)
        empty = Fetched.empty(self.signal, PROVIDER, self.kind, now)
        if root is None:
            return empty
        currencies = _fields(root, "currency_Unit.name")
        if currencies - {"EUR"}:
            raise PayloadError(
                PROVIDER,
                f"priced {self.area} in {', '.join(sorted(currencies))}, not EUR",
            )
        try:
            with _quiet_parser():
                by_resolution = _parse_prices(text)
            series, step = _finest(by_resolution)
        except Exception as exc:  # entsoe-py raises whatever a malformed document causes
            raise PayloadError(
                PROVIDER, f"sent a price document for {self.area} that cannot be read"
            ) from exc
        series = series[(series.index >= start) & (series.index < end)]
        if series.empty:
            return empty
        return Fetched.from_series(
            self.signal,
            PROVIDER,
            self.kind,
            now,
            series * self.usd_per_eur,
            forecast=False,
            interval=step,
        )

    def next_publication(self, now: pd.Timestamp) -> pd.Timestamp | None:
        """The next day-ahead publication after ``now``: about 12:45 Brussels time (CET or
        CEST), as UTC."""
        return next_day_ahead_publication(now)


def next_day_ahead_publication(now: pd.Timestamp) -> pd.Timestamp:
    """The first 12:45 Europe/Brussels after ``now``, UTC (DST-aware)."""
    local = as_utc(now).tz_convert(PUBLICATION_TZ)
    hour, minute = PUBLICATION_TIME
    day = pd.Timestamp(local.date())
    for offset in (0, 1, 2):
        at = (day + pd.Timedelta(days=offset)).replace(hour=hour, minute=minute)
        when = at.tz_localize(PUBLICATION_TZ)
        if when > local:
            return when.tz_convert("UTC")
    raise AssertionError("unreachable")  # pragma: no cover


def _finest(by_resolution: Mapping[str, pd.Series]) -> tuple[pd.Series, pd.Timedelta]:
    """One series at the finest resolution present: coarser values fill the times the finer
    series lacks (repeated on each finer step), interior gaps are NaN."""
    present = [
        (pd.Timedelta(key), s.astype(float))
        for key, s in by_resolution.items()
        if s is not None and len(s) > 0
    ]
    if not present:
        return pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC")), pd.Timedelta(hours=1)
    present.sort(key=lambda item: item[0])
    step = present[0][0]
    parts: list[pd.Series] = []
    for length, s in present:
        s = s[~s.index.duplicated(keep="last")]
        index = pd.DatetimeIndex(s.index).tz_convert("UTC")
        if length == step:
            parts.append(pd.Series(s.to_numpy(dtype=float), index=index))
            continue
        repeat = int(length / step)
        times = index.repeat(repeat) + pd.to_timedelta(
            np.tile(np.arange(repeat), len(index)) * step
        )
        parts.append(pd.Series(np.repeat(s.to_numpy(dtype=float), repeat), index=times))
    merged = pd.concat(parts)
    merged = merged[~merged.index.duplicated(keep="first")].sort_index()
    grid = pd.date_range(merged.index[0], merged.index[-1], freq=step)
    return merged.reindex(grid), step


# -- generation mix -----------------------------------------------------------------------


class EntsoeMixCarbon:
    """Average lifecycle carbon intensity of a bidding zone's generation, gCO2eq/kWh.

    From the actual generation per production type (document A75, process A16, MW), each
    type weighted by a lifecycle emission factor::

        intensity(t) = sum_k gen_k(t) * factor_k / sum_k gen_k(t)

    The factors (:data:`LIFECYCLE_G_PER_KWH`) are the medians of IPCC AR5 WG3 Annex III,
    Table A.III.2 (Schlomer et al. 2014, "Annex III: Technology-specific cost and
    performance parameters"), gCO2eq/kWh: coal (pulverised) 820, gas (combined cycle) 490,
    biomass (dedicated) 230, geothermal 38, hydropower 24, ocean 17, nuclear 12, solar PV
    48 (utility; rooftop 41), wind onshore 11, offshore 12. AR5 gives none for oil; 650 is
    from the UK Parliamentary Office of Science and Technology, "Carbon footprint of
    electricity generation" (POSTnote 268, 2006), as Electricity Maps also uses. Mapping of
    ENTSO-E production types:

    ========  ==========================  ======  ==================================
    psrType   ENTSO-E name                factor  from
    ========  ==========================  ======  ==================================
    B01       Biomass                     230     biomass (dedicated)
    B02       Fossil Brown coal/Lignite   820     coal
    B03       Fossil Coal-derived gas     820     coal (its carbon is the coal's)
    B04       Fossil Gas                  490     gas (combined cycle)
    B05       Fossil Hard coal            820     coal
    B06       Fossil Oil                  650     oil (UK POST 2006)
    B07       Fossil Oil shale            820     coal (a lower bound for oil shale)
    B08       Fossil Peat                 820     coal (a lower bound for peat)
    B09       Geothermal                  38      geothermal
    B10       Hydro Pumped Storage        24      hydropower (its generation only)
    B11       Hydro Run-of-river          24      hydropower
    B12       Hydro Water Reservoir       24      hydropower
    B13       Marine                      17      ocean
    B14       Nuclear                     12      nuclear
    B15       Other renewable             230     biomass (mostly biogas)
    B16       Solar                       48      solar PV (utility)
    B17       Waste                       230     biomass
    B18       Wind Offshore               12      wind offshore
    B19       Wind Onshore                11      wind onshore
    B20       Other                       490     gas (an assumed fossil mix)
    B21-B24   links, substations          --      not generation: left out
    B25       Energy storage              --      left out (energy generated earlier)
    ========  ==========================  ======  ==================================

    Consumption (the ``Actual Consumption`` columns: pumped-storage pumping, storage
    charging) is not generation and is left out, as are production types outside the table.
    A time at which a type that reports elsewhere in the answer has no value is a gap
    (NaN), not a mix computed without it; so is a time with no generation at all.
    Types reported at different resolutions are averaged to the coarsest one (MW are
    interval averages).

    Parameters
    ----------
    client, token, path, field
        As for :class:`EntsoePrices`.
    area
        The bidding zone (``DE_LU``, ``FR``, ... or an EIC code).
    factors
        Emission factor per ``psrType``, gCO2eq/kWh (``None``: left out); defaults to
        :data:`LIFECYCLE_G_PER_KWH`.
    """

    provider = PROVIDER
    signal = "carbon_g_per_kwh"
    kind = carbon_kind("average", "lifecycle")

    def __init__(
        self,
        client: ApiClient,
        token: Secret,
        area: str,
        *,
        factors: Mapping[str, float | None] | None = None,
        path: str = "",
        field: str = "signals.entsoe.area",
    ) -> None:
        self.area, self.eic = resolve_area(area, field)
        self.factors = dict(LIFECYCLE_G_PER_KWH if factors is None else factors)
        for code, value in self.factors.items():
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ValueError(f"the emission factor of {code} must be >= 0, got {value!r}")
        self._client = client
        self._token = token
        self._path = path
        client.add_secret(token)

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp) -> Fetched:
        """Intensity for the intervals starting in ``[start, end)``, gCO2eq/kWh, all observed
        (``forecast`` False); empty if the platform has no generation for the period."""
        start, end, now = as_utc(start), as_utc(end), as_utc(now)
        params = {
            "securityToken": self._token.reveal(),
            "documentType": "A75",
            "processType": "A16",
            "in_Domain": self.eic,
            **_period(start, end),
        }
        response = self._client.get(self._path, params=params)
        root, text = _document(response.text, "GL_MarketDocument", "generation", self._token)
        empty = Fetched.empty(self.signal, PROVIDER, self.kind, now)
        if root is None:
            return empty
        try:
            with _quiet_parser():
                parsed = _parse_generation(text)
            generation = _generation_by_type(parsed)
        except Exception as exc:  # entsoe-py raises whatever a malformed document causes
            raise PayloadError(
                PROVIDER, f"sent a generation document for {self.area} that cannot be read"
            ) from exc
        intensity, step = self.intensity(generation, _resolutions(root))
        intensity = intensity[(intensity.index >= start) & (intensity.index < end)]
        if intensity.empty:
            return empty
        return Fetched.from_series(
            self.signal, PROVIDER, self.kind, now, intensity, forecast=False, interval=step
        )

    def next_publication(self, now: pd.Timestamp) -> pd.Timestamp | None:
        """``None``: actual generation is published continuously, about an hour after
        real time."""
        return None

    def intensity(
        self, generation: pd.DataFrame, resolutions: Collection[pd.Timedelta] = ()
    ) -> tuple[pd.Series, pd.Timedelta]:
        """The average intensity, gCO2eq/kWh, of generation in MW by ``psrType`` column
        (UTC index), and its interval: the coarsest of ``resolutions`` (the document's),
        else of the columns' spacings."""
        columns = [c for c in generation.columns if self.factors.get(c) is not None]
        frame = generation[columns].astype(float)
        frame = frame.loc[:, frame.notna().any(axis=0)]
        if frame.empty:
            return pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC")), pd.Timedelta(
                hours=1
            )
        frame, step = _common_resolution(frame, resolutions)
        weights = np.array([self.factors[c] for c in frame.columns], dtype=float)
        values = frame.to_numpy(dtype=float)
        total = values.sum(axis=1)
        emitted = values @ weights
        complete = ~np.isnan(values).any(axis=1) & (total > 0)
        out = np.full(len(frame), np.nan)
        out[complete] = emitted[complete] / total[complete]
        return pd.Series(out, index=frame.index), step


def _generation_by_type(parsed: pd.DataFrame | pd.Series) -> pd.DataFrame:
    """Generation (MW) per ``psrType`` code from ``entsoe-py``'s ``parse_generation``,
    consumption columns dropped."""
    frame = parsed.to_frame() if isinstance(parsed, pd.Series) else parsed
    out: dict[str, pd.Series] = {}
    column: Any
    for column in frame.columns:
        parts = column if isinstance(column, tuple) else (column,)
        if "Actual Consumption" in parts:
            continue
        codes = [_CODE_OF_NAME[p] for p in parts if isinstance(p, str) and p in _CODE_OF_NAME]
        if not codes:
            continue
        code = codes[0]
        series: Any = frame[column]
        if isinstance(series, pd.DataFrame):  # a repeated column label
            series = series.iloc[:, 0]
        out[code] = series if code not in out else out[code].combine_first(series)
    result = pd.DataFrame(out)
    if len(result.index):
        result.index = pd.DatetimeIndex(result.index).tz_convert("UTC")
    return result.sort_index()


def _resolutions(root: ET.Element) -> list[pd.Timedelta]:
    """The resolutions (``PT15M``, ``PT60M``, ...) of a document's periods."""
    steps = []
    for text in _fields(root, "resolution"):
        try:
            steps.append(pd.Timedelta(text))
        except ValueError:
            continue  # left to the parser, which refuses it
    return steps


def _common_resolution(
    frame: pd.DataFrame, resolutions: Collection[pd.Timedelta] = ()
) -> tuple[pd.DataFrame, pd.Timedelta]:
    """The frame on one grid: the coarsest of ``resolutions`` (else of the columns'
    spacings), finer values averaged over it, every step from the first time to the last
    (NaN where nothing came)."""
    steps: list[pd.Timedelta] = list(resolutions)
    if not steps:
        for column in frame.columns:
            index = frame[column].dropna().index
            if len(index) > 1:
                steps.append(pd.Series(index[1:] - index[:-1]).min())
    step = max(steps) if steps else pd.Timedelta(hours=1)
    index = pd.DatetimeIndex(frame.index)
    if len(index) > 1 and pd.Series(index[1:] - index[:-1]).min() < step:
        frame = frame.resample(step).mean()
    grid = pd.date_range(frame.index[0], frame.index[-1], freq=step)
    return frame.reindex(grid), step
