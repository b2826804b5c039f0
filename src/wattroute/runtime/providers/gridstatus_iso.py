"""US ISO prices through ``gridstatus``: CAISO, ERCOT, PJM and NYISO, day-ahead or real-time.

``gridstatus`` fetches and reads each ISO's own publication (CAISO OASIS, ERCOT MIS, PJM Data
Miner, NYISO's CSV postings) with ``requests`` and pandas, and returns frames of documented
columns: ``Interval Start``, ``Interval End`` (tz-aware, the ISO's local time), ``Location``
(PJM: ``Location Id`` and ``Location Name``) and the price, ``LMP`` (CAISO, PJM, NYISO
locational marginal prices) or ``SPP`` (ERCOT settlement-point prices), USD/MWh.

Because those requests do not go through
:class:`~wattroute.runtime.providers.http.ApiClient`, :class:`IsoPrices` wraps each call in
the same rules: the provider's :class:`~wattroute.runtime.providers.http.RequestBudget`,
retries with backoff on timeouts, refused connections and HTTP 5xx, a 429's ``Retry-After``
(up to the policy's maximum), 401/403 as
:class:`~wattroute.runtime.providers.http.AuthError`, and anything else unexpected (a
``KeyError`` or ``ValueError`` when an ISO changes its format) as
:class:`~wattroute.runtime.providers.http.PayloadError` naming the ISO.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import requests

from wattroute.errors import InputError
from wattroute.runtime.providers.http import (
    AuthError,
    PayloadError,
    ProviderError,
    RateLimited,
    RequestBudget,
    RetryPolicy,
    Secret,
    Unavailable,
    retry_after_s,
)
from wattroute.runtime.providers.values import Fetched, as_utc

__all__ = ["ISOS", "IsoPrices", "IsoSpec", "iso_client"]

log = logging.getLogger("wattroute.providers")

PROVIDER = "gridstatus"


@dataclass(frozen=True)
class IsoSpec:
    """What :class:`IsoPrices` needs to know of one ISO.

    Parameters
    ----------
    name
        ``CAISO``, ``ERCOT``, ``PJM`` or ``NYISO``.
    tz
        The ISO's local time zone (its market days are local days).
    day_ahead_publication
        Local ``(hour, minute)`` at which the day-ahead market's result usually appears
        (approximate: each ISO publishes when its solution is approved, some minutes around
        it).
    markets
        ``gridstatus.Markets`` member names for ``day-ahead`` and ``real-time``.
    price_column
        ``LMP`` or ``SPP``.
    """

    name: str
    tz: str
    day_ahead_publication: tuple[int, int]
    markets: Mapping[str, str]
    price_column: str = "LMP"


#: The ISOs, with approximate day-ahead publication times: CAISO about 13:00 Pacific, ERCOT
#: about 13:30 Central, PJM about 13:30 Eastern, NYISO about 11:00 Eastern.
ISOS: Mapping[str, IsoSpec] = {
    "CAISO": IsoSpec(
        "CAISO",
        "America/Los_Angeles",
        (13, 0),
        {"day-ahead": "DAY_AHEAD_HOURLY", "real-time": "REAL_TIME_5_MIN"},
    ),
    "ERCOT": IsoSpec(
        "ERCOT",
        "America/Chicago",
        (13, 30),
        {"day-ahead": "DAY_AHEAD_HOURLY", "real-time": "REAL_TIME_15_MIN"},
        price_column="SPP",
    ),
    "PJM": IsoSpec(
        "PJM",
        "America/New_York",
        (13, 30),
        {"day-ahead": "DAY_AHEAD_HOURLY", "real-time": "REAL_TIME_5_MIN"},
    ),
    "NYISO": IsoSpec(
        "NYISO",
        "America/New_York",
        (11, 0),
        {"day-ahead": "DAY_AHEAD_HOURLY", "real-time": "REAL_TIME_5_MIN"},
    ),
}

#: ``gridstatus`` market names each ISO's call accepts (another may be asked for in place of
#: the default, e.g. CAISO's ``REAL_TIME_15_MIN``).
SUPPORTED_MARKETS: Mapping[str, frozenset[str]] = {
    "CAISO": frozenset({"DAY_AHEAD_HOURLY", "REAL_TIME_5_MIN", "REAL_TIME_15_MIN"}),
    "ERCOT": frozenset({"DAY_AHEAD_HOURLY", "REAL_TIME_15_MIN"}),
    "PJM": frozenset({"DAY_AHEAD_HOURLY", "REAL_TIME_5_MIN", "REAL_TIME_HOURLY"}),
    "NYISO": frozenset(
        {"DAY_AHEAD_HOURLY", "REAL_TIME_5_MIN", "REAL_TIME_15_MIN", "REAL_TIME_HOURLY"}
    ),
}


def _spec(name: str, field: str) -> IsoSpec:
    spec = ISOS.get(name.strip().upper())
    if spec is None:
        raise InputError(
            field,
            f"{name!r} is not an ISO wattroute reads through gridstatus.",
            f"use one of {', '.join(ISOS)}.",
        )
    return spec


def iso_client(name: str, *, pjm_api_key: Secret | None = None, field: str = "signals.iso") -> Any:
    """The ``gridstatus`` client of an ISO: ``gridstatus.CAISO()``, ``gridstatus.Ercot()``,
    ``gridstatus.PJM(api_key=...)`` or ``gridstatus.NYISO()``.

    Parameters
    ----------
    name
        ``CAISO``, ``ERCOT``, ``PJM`` or ``NYISO``.
    pjm_api_key
        PJM Data Miner's key (PJM only; else ``gridstatus`` reads ``PJM_API_KEY``).
    field
        The config field naming the ISO, for errors.

    Raises
    ------
    InputError
        An unknown ISO, or PJM without a key.
    """
    import gridstatus

    spec = _spec(name, field)
    if spec.name == "CAISO":
        return gridstatus.CAISO()
    if spec.name == "ERCOT":
        return gridstatus.Ercot()
    if spec.name == "NYISO":
        return gridstatus.NYISO()
    try:
        return gridstatus.PJM(api_key=pjm_api_key.reveal() if pjm_api_key else None)
    except ValueError:
        raise InputError(
            field,
            "PJM needs a Data Miner API key and none is set.",
            "export PJM_API_KEY=... (register at https://www.pjm.com) or add it to the secrets "
            "file named by signals.secrets_file.",
        ) from None


def _markets(name: str) -> Any:
    from gridstatus.base import Markets

    return Markets[name]


def _is_no_data(exc: BaseException) -> bool:
    from gridstatus.base import NoDataFoundException

    return isinstance(exc, NoDataFoundException)


class IsoPrices:
    """Day-ahead or real-time prices at one node of a US ISO, USD/MWh.

    Parameters
    ----------
    iso
        The ``gridstatus`` client (:func:`iso_client`); tests hand in an object with the
        same ``get_lmp`` / ``get_spp``.
    iso_name
        ``CAISO``, ``ERCOT``, ``PJM`` or ``NYISO``.
    node
        The pricing location: a CAISO node or trading hub (``TH_NP15_GEN-APND``), an ERCOT
        settlement point (``HB_HOUSTON``, ``LZ_NORTH``), a PJM pnode id (``51288``, the
        Western Hub), a NYISO zone or generator name (``N.Y.C.``).
    market
        ``day-ahead`` or ``real-time``.
    gridstatus_market
        A ``gridstatus.Markets`` name in place of the ISO's default for ``market``
        (``REAL_TIME_15_MIN`` for CAISO, ``REAL_TIME_HOURLY`` for PJM, ...).
    location_type
        Passed to ERCOT's ``get_spp`` (``Trading Hub``, ``Load Zone``, ``Resource Node``;
        default all) or NYISO's ``get_lmp`` (``zone``, default, or ``generator``).
    budget
        The request budget shared by every source of this ISO.
    retry
        Attempts, backoff and the longest ``Retry-After`` sat out.
    sleep
        How to wait between attempts (injected by tests).
    field
        The config field naming the node, for errors.

    Raises
    ------
    InputError
        An unknown ISO or market, a market the ISO's call does not take, or a PJM node that
        is not a pnode id.

    Notes
    -----
    A node absent from an answer that has other rows raises
    :class:`~wattroute.runtime.providers.http.PayloadError` rather than an
    :class:`~wattroute.errors.InputError`: ``fetch`` only raises provider errors (the chain
    of sources falls back and the controller keeps running), and an ISO also drops or
    renames nodes, so the same answer is not always a mistake in the config. The message
    names the node and how to find a valid one. A node the ISO cannot have (a PJM name in
    place of its id) is refused here, when the config is read.
    """

    provider = PROVIDER
    signal = "price_usd_per_mwh"

    def __init__(
        self,
        iso: object,
        iso_name: str,
        node: str,
        *,
        market: str = "day-ahead",
        gridstatus_market: str | None = None,
        location_type: str | None = None,
        budget: RequestBudget | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        field: str = "signals.iso.node",
    ) -> None:
        self.spec = _spec(iso_name, field)
        if market not in ("day-ahead", "real-time"):
            raise InputError(field, f"unknown market {market!r}.", "use day-ahead or real-time.")
        self.market = market
        chosen = (gridstatus_market or self.spec.markets[market]).strip().upper()
        if chosen not in SUPPORTED_MARKETS[self.spec.name]:
            raise InputError(
                field,
                f"{self.spec.name} prices are not read for the gridstatus market {chosen!r}.",
                f"use one of {', '.join(sorted(SUPPORTED_MARKETS[self.spec.name]))}.",
            )
        if chosen.startswith("DAY_AHEAD") != (market == "day-ahead"):
            raise InputError(
                field,
                f"the gridstatus market {chosen} does not belong to the {market} market.",
                "leave gridstatus_market unset or pick one of the same market.",
            )
        self.gridstatus_market = chosen
        node = str(node).strip()
        if not node:
            raise InputError(field, "the node is empty.", "name the ISO's pricing node.")
        if self.spec.name == "PJM" and not node.isdigit():
            raise InputError(
                field,
                f"PJM nodes are given by their pnode id, not {node!r}.",
                "use the numeric pnode id (gridstatus.PJM().get_pnode_ids() lists them; "
                "51288 is the Western Hub).",
            )
        self.node = node
        self.location_type = location_type
        self.iso = iso
        self.budget = budget or RequestBudget()
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._field = field
        self.requests = 0

    @property
    def kind(self) -> str:
        return self.market

    # -- the call ---------------------------------------------------------------------------

    def _query(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame | None:
        """One ``gridstatus`` call for ``[start, end)``; ``None`` if the ISO has no data."""
        tz = self.spec.tz
        begin, finish = start.tz_convert(tz), end.tz_convert(tz)
        market = _markets(self.gridstatus_market)
        iso: Any = self.iso
        if self.spec.name == "ERCOT":
            if self.gridstatus_market == "DAY_AHEAD_HOURLY":
                # ERCOT files day-ahead prices by publication time, the day before delivery.
                begin = begin.normalize() - pd.Timedelta(days=1)
            frame = iso.get_spp(
                date=begin,
                end=finish,
                market=market,
                locations=[self.node],
                location_type=self.location_type or "ALL",
            )
        elif self.spec.name == "NYISO":
            kwargs: dict[str, Any] = {}
            if self.location_type:
                kwargs["location_type"] = self.location_type
            frame = iso.get_lmp(
                date=begin, end=finish, market=market, locations=[self.node], **kwargs
            )
        else:
            frame = iso.get_lmp(date=begin, end=finish, market=market, locations=[self.node])
        return frame if isinstance(frame, pd.DataFrame) else _not_a_frame(self.spec.name, frame)

    def _call(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame | None:
        """:meth:`_query` under the budget and retry rules."""
        iso = self.spec.name
        last: ProviderError | None = None
        for attempt in range(self.retry.attempts):
            self.budget.take(PROVIDER)
            self.requests += 1
            wait = self.retry.delay(attempt)
            try:
                with warnings.catch_warnings():
                    # gridstatus marks get_lmp deprecated in favour of all-node downloads.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    return self._query(start, end)
            except ProviderError:
                raise
            except requests.Timeout:
                last = Unavailable(PROVIDER, f"{iso} timed out")
            except requests.ConnectionError:
                last = Unavailable(PROVIDER, f"{iso} refused or dropped the connection")
            except requests.HTTPError as exc:
                response = exc.response
                status = getattr(response, "status_code", None)
                if status in (401, 403):
                    raise AuthError(
                        PROVIDER,
                        f"{iso} refused the credentials (HTTP {status}); check its API key "
                        "and its access to the price data",
                    ) from None
                if status == 429:
                    asked = retry_after_s(response)
                    last = RateLimited(PROVIDER, f"{iso} rate limited (HTTP 429)", asked)
                    if asked is not None and asked > self.retry.max_retry_after_s:
                        break
                    if asked is not None:
                        wait = asked
                elif status is not None and status >= 500:
                    last = Unavailable(PROVIDER, f"{iso} answered HTTP {status}")
                else:
                    raise ProviderError(
                        PROVIDER, f"{iso} answered HTTP {status} to the price request"
                    ) from None
            except Exception as exc:
                if _is_no_data(exc):
                    return None
                raise PayloadError(
                    PROVIDER,
                    f"{iso} sent prices gridstatus could not read ({type(exc).__name__}); "
                    "the ISO may have changed its format: update gridstatus",
                ) from exc
            if attempt + 1 < self.retry.attempts:
                log.info(
                    "provider retry",
                    extra={
                        "fields": {
                            "provider": PROVIDER,
                            "iso": iso,
                            "error": last.problem,
                            "wait_s": round(wait, 3),
                        }
                    },
                )
                self._sleep(wait)
        assert last is not None
        raise last

    # -- Source -----------------------------------------------------------------------------

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp) -> Fetched:
        """Prices at the node for the intervals starting in ``[start, end)``, USD/MWh, all
        published (``forecast`` False); empty if the ISO has none for the period yet. Missing
        intervals between the first and last are NaN."""
        start, end, now = as_utc(start), as_utc(end), as_utc(now)
        empty = Fetched.empty(self.signal, PROVIDER, self.kind, now)
        frame = self._call(start, end)
        if frame is None or frame.empty:
            return empty
        series, interval = self._node_series(frame)
        series = series[(series.index >= start) & (series.index < end)]
        if series.empty:
            return empty
        return Fetched.from_series(
            self.signal, PROVIDER, self.kind, now, series, forecast=False, interval=interval
        )

    def _node_series(self, frame: pd.DataFrame) -> tuple[pd.Series, pd.Timedelta]:
        """The node's prices by UTC interval start, on a regular grid, and the interval."""
        iso, price = self.spec.name, self.spec.price_column
        where = [c for c in ("Location", "Location Id", "Location Name") if c in frame.columns]
        missing = [c for c in ("Interval Start", price) if c not in frame.columns]
        if missing or not where:
            raise PayloadError(
                PROVIDER,
                f"{iso} prices lack the column(s) "
                f"{', '.join(missing or ['Location'])}; update gridstatus",
            )
        mask = np.zeros(len(frame), dtype=bool)
        for column in where:
            mask |= frame[column].astype(str).str.strip().to_numpy() == self.node
        rows = frame.loc[mask]
        if rows.empty:
            raise PayloadError(
                PROVIDER,
                f"{iso} has no {self.market} price at node {self.node!r} ({self._field}); "
                f"check the name against {_node_hint(iso)}",
            )
        try:
            starts = pd.DatetimeIndex(rows["Interval Start"])
            if starts.tz is None:
                raise ValueError("naive times")
            index = starts.tz_convert("UTC")
            values = pd.to_numeric(rows[price], errors="raise").to_numpy(dtype=float)
        except (TypeError, ValueError) as exc:
            raise PayloadError(
                PROVIDER, f"{iso} prices have unreadable times or values ({exc.__class__.__name__})"
            ) from exc
        series = pd.Series(values, index=index)
        series = series[~series.index.duplicated(keep="last")].sort_index()
        interval = _interval(rows, pd.DatetimeIndex(series.index))
        if len(series) > 1:
            grid = pd.date_range(series.index[0], series.index[-1], freq=interval)
            if len(grid) >= len(series) and series.index.isin(grid).all():
                series = series.reindex(grid)
        return series, interval

    def next_publication(self, now: pd.Timestamp) -> pd.Timestamp | None:
        """Day-ahead: the next usual publication of the ISO's day-ahead result after
        ``now`` (local time, DST-aware), UTC. Real-time: ``None``."""
        if self.market != "day-ahead":
            return None
        local = as_utc(now).tz_convert(self.spec.tz)
        hour, minute = self.spec.day_ahead_publication
        day = pd.Timestamp(local.date())
        for offset in (0, 1, 2):
            at = (day + pd.Timedelta(days=offset)).replace(hour=hour, minute=minute)
            when = at.tz_localize(self.spec.tz)
            if when > local:
                return when.tz_convert("UTC")
        raise AssertionError("unreachable")  # pragma: no cover


def _interval(rows: pd.DataFrame, index: pd.DatetimeIndex) -> pd.Timedelta:
    """The length of an interval: the most common ``Interval End - Interval Start``, else the
    most common spacing of the starts (an hour if there is one row)."""
    if "Interval End" in rows.columns:
        try:
            lengths = pd.DatetimeIndex(rows["Interval End"]) - pd.DatetimeIndex(
                rows["Interval Start"]
            )
            lengths = lengths[lengths > pd.Timedelta(0)]
            if len(lengths):
                return pd.Timedelta(pd.Series(lengths).mode().iloc[0])
        except (TypeError, ValueError):
            pass
    if len(index) < 2:
        return pd.Timedelta(hours=1)
    return pd.Timedelta(pd.Series(index[1:] - index[:-1]).mode().iloc[0])


def _not_a_frame(iso: str, value: object) -> pd.DataFrame:
    raise PayloadError(PROVIDER, f"{iso} answered with a {type(value).__name__}, not a table")


def _node_hint(iso: str) -> str:
    return {
        "CAISO": "gridstatus.CAISO().get_pnodes() (trading hubs end in -APND)",
        "ERCOT": "ERCOT's settlement points (HB_ hubs, LZ_ load zones, resource nodes)",
        "PJM": "gridstatus.PJM().get_pnode_ids()",
        "NYISO": "NYISO's zone names (N.Y.C., WEST, ...) or set location_type: generator",
    }[iso]
