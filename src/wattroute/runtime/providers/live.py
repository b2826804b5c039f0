"""The live provider: ordered sources per site and signal, with fallback, kept in the store.

For every site and signal the configuration names an ordered list of sources (Electricity
Maps then ENTSO-E for carbon, say). :class:`LiveProvider` answers the controller through the
same interface as a replay:

* **refresh**: a chain is fetched when its last fetch is older than ``refresh``; its first
  source that answers with a fresh value ends the round. A source that fails (timeout, 5xx,
  429, a malformed answer, our own request budget spent) is left alone for a while
  (``Retry-After`` when it said, ``failure_backoff`` otherwise, an hour after refused
  credentials) and the next one is asked; a source whose newest observed value is older than
  ``stale_after`` counts as stale, and the next one is asked too;
* **the value of a step**: the first source, in order, with an observed value for the
  interval that holds the step; else the newest observed value no older than
  ``stale_after``; else nothing (NaN): the controller carries the last good value forward and
  reports itself degraded until a source answers again;
* **published values** (a day-ahead auction's prices for tomorrow) are handed out ahead;
  **forecasts** (a numerical weather forecast as solar output, a carbon forecast) go to the
  controller's forecaster, which uses them in place of its past-only guess;
* every fetched value is **persisted** (``signal_values``), so that a restarted controller
  has its recent history without asking the provider again, and every value the controller
  gets carries its :class:`~wattroute.runtime.providers.values.Provenance`.

Started (:meth:`LiveProvider.start_fetching`), the provider fetches in a thread of its own,
so that a slow or failing provider — a timeout of seconds per attempt, retries, several
sources — never holds up the controller, which keeps deciding and answering grid events on
what was fetched before; the controller only ever reads what is held. Not started (a test,
``signals check``), it fetches in the caller's thread when the step in force is read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from wattroute.runtime.clock import Clock
from wattroute.runtime.providers.http import AuthError, BudgetExhausted, ProviderError, RateLimited
from wattroute.runtime.providers.replay import SIGNAL_NAMES
from wattroute.runtime.providers.source import Source
from wattroute.runtime.providers.values import Fetched, Provenance

log = logging.getLogger("wattroute.providers")


class SignalStore(Protocol):
    """Where fetched values are kept across restarts (the service's store)."""

    def save_signal_values(self, site: str, fetched: Fetched) -> None: ...

    def signal_values(self, since: pd.Timestamp) -> list[tuple[str, Fetched]]: ...


@dataclass(frozen=True)
class LiveOptions:
    """How often and how far the live provider fetches.

    Parameters
    ----------
    refresh
        Time between fetches of one chain.
    stale_after
        Age beyond which a source's newest observed value is stale (fall back to the next
        source; past it, a step has no value and the controller is degraded).
    lookback
        History fetched at the first start (the forecaster reads the past days) and kept.
    horizon
        How far ahead values are fetched (published prices, forecasts).
    failure_backoff
        How long a failed source is left alone when it did not say.
    auth_backoff
        How long a source whose credentials were refused is left alone.
    """

    refresh: pd.Timedelta = pd.Timedelta(minutes=15)
    stale_after: pd.Timedelta = pd.Timedelta(hours=3)
    lookback: pd.Timedelta = pd.Timedelta(days=3)
    horizon: pd.Timedelta = pd.Timedelta(days=2)
    failure_backoff: pd.Timedelta = pd.Timedelta(minutes=5)
    auth_backoff: pd.Timedelta = pd.Timedelta(hours=1)


@dataclass
class SourceState:
    """What one source of a chain has given, and how it fares."""

    source: Source
    times: pd.DatetimeIndex = field(
        default_factory=lambda: pd.DatetimeIndex([], tz="UTC").as_unit("ns")
    )
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    forecast: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    interval: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(hours=1))
    kind: str = ""
    fetched_at: pd.Timestamp | None = None
    failed_until: pd.Timestamp | None = None
    last_error: str | None = None

    @property
    def name(self) -> str:
        return self.source.provider

    def merge(self, fetched: Fetched, keep_from: pd.Timestamp) -> None:
        """Take in a fetch: its rows replace those at the same times; rows before
        ``keep_from`` are dropped."""
        old = pd.DataFrame({"value": self.values, "forecast": self.forecast}, index=self.times)
        new = pd.DataFrame(
            {"value": fetched.values, "forecast": fetched.forecast}, index=fetched.times
        )
        both = pd.concat([old, new]) if len(old) else new
        both = both[~both.index.duplicated(keep="last")].sort_index()
        both = both[both.index >= keep_from]
        # nanoseconds, whatever unit the fetch came in: lookups compare ``asi8`` values
        self.times = pd.DatetimeIndex(both.index).tz_convert("UTC").as_unit("ns")
        self.values = both["value"].to_numpy(dtype=float)
        self.forecast = both["forecast"].to_numpy(dtype=bool)
        self.interval = fetched.interval
        self.kind = fetched.kind or self.kind
        if self.fetched_at is None or fetched.fetched_at > self.fetched_at:
            self.fetched_at = fetched.fetched_at

    def newest_observed(self) -> pd.Timestamp | None:
        ok = ~self.forecast & np.isfinite(self.values)
        return self.times[np.flatnonzero(ok)[-1]] if ok.any() else None

    def observed_at(
        self, t: pd.Timestamp, stale_after: pd.Timedelta
    ) -> tuple[float, pd.Timestamp] | None:
        """The observed value for the interval holding ``t``, else the newest before it no
        older than ``stale_after``."""
        ok = ~self.forecast & np.isfinite(self.values)
        i = int(np.searchsorted(self.times.asi8, t.value, side="right")) - 1
        while i >= 0 and not ok[i]:
            i -= 1
        if i < 0:
            return None
        at = self.times[i]
        if t < at + self.interval or t - at <= stale_after:
            return float(self.values[i]), at
        return None

    def on_steps(self, steps: pd.DatetimeIndex, forecast: bool) -> np.ndarray:
        """Values (observed if ``forecast`` is False, forecast otherwise) for the intervals
        holding each of ``steps``, NaN where none."""
        out = np.full(len(steps), np.nan)
        if not len(self.times):
            return out
        i = np.searchsorted(self.times.asi8, steps.asi8, side="right") - 1
        ok = i >= 0
        j = np.where(ok, i, 0)
        inside = ok & (steps.asi8 < (self.times[j] + self.interval).asi8)
        right = inside & (self.forecast[j] == forecast)
        out[right] = self.values[j[right]]
        return out


@dataclass
class Chain:
    """Ordered sources of one signal at one site."""

    signal: str
    site: int
    sources: list[SourceState]
    last_attempt: pd.Timestamp | None = None
    answered_by: str | None = None


class LiveProvider:
    """Live sources behind the controller's provider interface.

    Parameters
    ----------
    chains
        Per ``(signal, site index)`` the ordered sources.
    sites
        Site names, in the fleet's order.
    start, step, n_steps
        The controller's period: time of step 0, step length, number of steps.
    clock
        The fleet's time (the real one in live operation).
    defaults
        Per signal, the value of sites that have no source for it, ``(S,)`` (zero price and
        carbon for an islanded site, zero solar without panels, the site's PUE).
    store
        Where fetched values are kept; history is read back from it at start.
    options
        Refresh, staleness, look-back and horizon.
    """

    def __init__(
        self,
        chains: Mapping[tuple[str, int], Sequence[Source]],
        sites: Sequence[str],
        start: pd.Timestamp,
        step: pd.Timedelta,
        n_steps: int,
        clock: Clock,
        defaults: Mapping[str, np.ndarray] | None = None,
        store: SignalStore | None = None,
        options: LiveOptions | None = None,
    ) -> None:
        self.sites = tuple(sites)
        self.start, self.step, self.n_steps = start, step, n_steps
        self.clock = clock
        self.store = store
        self.options = options or LiveOptions()
        s = len(self.sites)
        self.defaults = {name: np.zeros(s) for name in SIGNAL_NAMES}
        self.defaults["pue"] = np.ones(s)
        for name, values in (defaults or {}).items():
            self.defaults[name] = np.asarray(values, dtype=float)
        self.chains = {
            key: Chain(key[0], key[1], [SourceState(src) for src in sources])
            for key, sources in chains.items()
            if sources
        }
        self._provenance: dict[str, list[Provenance | None]] = {}
        # Held while fetched values are merged in and while they are read: the fetching
        # thread replaces a source's arrays, the controller's thread reads them.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if store is not None:
            self._load(store)

    # -- time ---------------------------------------------------------------------------

    def time_of(self, k: int) -> pd.Timestamp:
        return self.start + k * self.step

    def _steps(self, first: int, count: int) -> pd.DatetimeIndex:
        return pd.date_range(self.time_of(first), periods=count, freq=self.step).as_unit("ns")

    # -- persistence --------------------------------------------------------------------

    def _load(self, store: SignalStore) -> None:
        """Read back what was fetched within the look-back (a restart does not refetch it)."""
        since = self.clock.now() - self.options.lookback
        index = {name: i for i, name in enumerate(self.sites)}
        for site, fetched in store.signal_values(since):
            chain = self.chains.get((fetched.signal, index.get(site, -1)))
            if chain is None:
                continue
            for state in chain.sources:
                if state.name == fetched.source:
                    state.merge(fetched, since)
                    break
        for chain in self.chains.values():
            fetched_at = [s.fetched_at for s in chain.sources if s.fetched_at is not None]
            if fetched_at:
                chain.last_attempt = max(fetched_at)

    # -- fetching -----------------------------------------------------------------------

    def start_fetching(self, poll_s: float = 1.0) -> None:
        """Fetch every chain once now (so that the first decision has values), then keep
        fetching what is due in a thread of its own, looking every ``poll_s`` seconds."""
        self.refresh()
        self._thread = threading.Thread(
            target=self._refresh_loop, args=(poll_s,), name="signal-fetch", daemon=True
        )
        self._thread.start()

    def stop_fetching(self, timeout_s: float = 30.0) -> None:
        """Stop the fetching thread (after the fetch in progress, if any)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _refresh_loop(self, poll_s: float) -> None:
        while not self._stop.wait(poll_s):
            try:
                self.refresh()
            except Exception:  # a bug in a source must not end the fetching for good
                log.exception("signal refresh failed")

    def refresh(self, now: pd.Timestamp | None = None, force: bool = False) -> None:
        """Fetch every chain that is due (all of them if ``force``)."""
        now = self.clock.now() if now is None else now
        for chain in self.chains.values():
            due = chain.last_attempt is None or now - chain.last_attempt >= self.options.refresh
            if force or due:
                self._refresh_chain(chain, now)

    def _refresh_chain(self, chain: Chain, now: pd.Timestamp) -> None:
        chain.last_attempt = now
        o = self.options
        keep_from = now - o.lookback
        for state in chain.sources:
            if state.failed_until is not None and now < state.failed_until:
                continue
            newest = state.newest_observed()
            begin = keep_from if newest is None else max(newest - state.interval, keep_from)
            try:
                fetched = state.source.fetch(begin, now + o.horizon, now)
            except ProviderError as exc:
                state.last_error = str(exc)
                state.failed_until = now + self._backoff(exc)
                log.warning(
                    "signal source failed; trying the next",
                    extra={
                        "fields": {
                            "site": self.sites[chain.site],
                            "signal": chain.signal,
                            "source": state.name,
                            "error": str(exc),
                            "until": state.failed_until.isoformat(),
                        }
                    },
                )
                continue
            state.failed_until, state.last_error = None, None
            with self._lock:
                state.merge(fetched, keep_from)
            if self.store is not None:
                try:
                    self.store.save_signal_values(self.sites[chain.site], fetched)
                except Exception:
                    log.exception("fetched signal values not saved")
            newest = state.newest_observed()
            if newest is not None and now - newest <= o.stale_after + state.interval:
                chain.answered_by = state.name
                return
            state.last_error = (
                "no observed value"
                if newest is None
                else f"stale: newest value {newest:%Y-%m-%dT%H:%MZ}"
            )
        chain.answered_by = None

    def _backoff(self, exc: ProviderError) -> pd.Timedelta:
        if isinstance(exc, AuthError):
            return self.options.auth_backoff
        if isinstance(exc, RateLimited | BudgetExhausted) and exc.retry_after_s is not None:
            return pd.Timedelta(seconds=max(exc.retry_after_s, 1.0))
        return self.options.failure_backoff

    # -- the provider interface --------------------------------------------------------

    def read(self, step: int) -> Mapping[str, np.ndarray]:
        t = self.time_of(step)
        now = self.clock.now()
        if self._thread is None and t >= now - self.step:
            self.refresh(now)  # not started: the step in force fetches what is due
        out = {name: np.array(v, dtype=float) for name, v in self.defaults.items()}
        told: dict[str, list[Provenance | None]] = {}
        for (signal, i), chain in self.chains.items():
            with self._lock:
                found = self._value(chain, t)
            if found is None:
                out[signal][i] = np.nan
                continue
            value, at, state = found
            out[signal][i] = value
            told.setdefault(signal, [None] * len(self.sites))[i] = Provenance(
                state.name, state.kind, at, state.fetched_at
            )
        for i in self._export_at_import_price():
            out["export_price_usd_per_mwh"][i] = out["price_usd_per_mwh"][i]
            price = told.get("price_usd_per_mwh", [None] * len(self.sites))[i]
            told.setdefault("export_price_usd_per_mwh", [None] * len(self.sites))[i] = price
        self._provenance = told
        return out

    def _export_at_import_price(self) -> list[int]:
        """Sites whose exports are paid the import price: a price source and none for the
        export price (as in a scenario without ``export_price``)."""
        return [
            i
            for i in range(len(self.sites))
            if ("price_usd_per_mwh", i) in self.chains
            and ("export_price_usd_per_mwh", i) not in self.chains
        ]

    def _value(
        self, chain: Chain, t: pd.Timestamp
    ) -> tuple[float, pd.Timestamp, SourceState] | None:
        stale = self.options.stale_after
        held = None
        for state in chain.sources:
            found = state.observed_at(t, stale)
            if found is None:
                continue
            value, at = found
            if t < at + state.interval:
                return value, at, state
            held = held or (value, at, state)
        return held

    def read_ahead(self, step: int) -> Mapping[str, tuple[np.ndarray, np.ndarray]]:
        """Observed values after ``step`` (prices already published), per signal."""
        return self._ahead(step, forecast=False)

    def read_forecasts(self, step: int) -> Mapping[str, np.ndarray]:
        """The sources' forecasts for the steps after ``step``, per signal ``(m, S)``."""
        return {name: rows for name, (_, rows) in self._ahead(step, forecast=True).items()}

    def _ahead(self, step: int, forecast: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        m = min(int(self.options.horizon / self.step), self.n_steps - step - 1)
        if m <= 0 or self.time_of(step) < self.clock.now() - self.step:
            return {}  # a past step (re-read after a restart): its later steps are read too
        steps = self._steps(step + 1, m)
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for (signal, i), chain in self.chains.items():
            column = np.full(m, np.nan)
            for state in chain.sources:  # the first source's value where it has one
                with self._lock:
                    values = state.on_steps(steps, forecast)
                column = np.where(np.isnan(column), values, column)
            if np.isnan(column).all():
                continue
            if signal not in out:
                until = np.full(len(self.sites), step + 1)
                out[signal] = (until, np.full((m, len(self.sites)), np.nan))
            until, rows = out[signal]
            rows[:, i] = column
            if not forecast:  # known up to the first gap
                gaps = np.flatnonzero(np.isnan(column))
                until[i] = step + 1 + (gaps[0] if gaps.size else m)
        if "price_usd_per_mwh" in out:
            until, rows = out["price_usd_per_mwh"]
            follow = self._export_at_import_price()
            if follow:
                export = out.setdefault(
                    "export_price_usd_per_mwh",
                    (np.full(len(self.sites), step + 1), np.full(rows.shape, np.nan)),
                )
                export[0][follow], export[1][:, follow] = until[follow], rows[:, follow]
        return out

    def provenance(self, step: int) -> Mapping[str, Sequence[Provenance | None]]:
        return self._provenance

    # -- for `wattroute signals check` -------------------------------------------------

    def report(self, now: pd.Timestamp | None = None) -> list[dict[str, object]]:
        """Per site and signal: which source answered, the latest value and its age, the
        kind, the next publication, and each source's last error."""
        now = self.clock.now() if now is None else now
        rows: list[dict[str, object]] = []
        for (signal, i), chain in sorted(self.chains.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            with self._lock:
                found = self._value(chain, now)
            latest = None if found is None else found[0]
            age = None if found is None else (now - found[1]).total_seconds()
            state = None if found is None else found[2]
            publications = [
                p for s in chain.sources if (p := s.source.next_publication(now)) is not None
            ]
            rows.append(
                {
                    "site": self.sites[i],
                    "signal": signal,
                    "source": None if state is None else state.name,
                    "kind": None if state is None else state.kind,
                    "latest": latest,
                    "age_s": age,
                    "next_publication": min(publications).isoformat() if publications else None,
                    "errors": {s.name: s.last_error for s in chain.sources if s.last_error},
                }
            )
        return rows
