"""The HTTP side every live provider shares: timeouts, retries with backoff, ``Retry-After``,
a request budget, and credentials that never reach a log line or an error message.

The exceptions::

    ProviderError            a source did not answer usable values (the chain falls back)
    ├── AuthError            401/403: the credentials are wrong, expired or lack the scope
    ├── RateLimited          429 after every retry; ``retry_after_s`` says for how long
    ├── BudgetExhausted      our own per-minute or per-month budget for the provider is spent
    ├── Unavailable          5xx, a timeout, a refused connection (after every retry)
    └── PayloadError         an answer that does not have the documented shape

:class:`ApiClient` wraps an :class:`httpx.Client`; tests hand it an ``httpx.MockTransport``
or point ``base_url`` at a server on 127.0.0.1 (no test reaches a real endpoint).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from wattroute.errors import InputError, WattrouteError

log = logging.getLogger("wattroute.providers")


class ProviderError(WattrouteError):
    """A source gave no usable answer. ``provider`` names it; the message never holds a
    credential."""

    def __init__(self, provider: str, problem: str) -> None:
        self.provider = provider
        self.problem = problem
        super().__init__(f"{provider}: {problem}")


class AuthError(ProviderError):
    """The provider refused the credentials (401/403)."""


class RateLimited(ProviderError):  # noqa: N818
    """The provider still answered 429 after the retries; wait ``retry_after_s``."""

    def __init__(self, provider: str, problem: str, retry_after_s: float | None) -> None:
        super().__init__(provider, problem)
        self.retry_after_s = retry_after_s


class BudgetExhausted(ProviderError):  # noqa: N818
    """Our own request budget for the provider is spent until ``retry_after_s`` from now."""

    def __init__(self, provider: str, problem: str, retry_after_s: float) -> None:
        super().__init__(provider, problem)
        self.retry_after_s = retry_after_s


class Unavailable(ProviderError):  # noqa: N818
    """5xx, a timeout or a connection that failed, after every retry."""


class PayloadError(ProviderError):
    """An answer whose shape is not the documented one (a field missing, a wrong type)."""


class Secret:
    """A credential: shown as ``***`` by ``str``/``repr``; :meth:`reveal` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


class _HttpxLogRedactor(logging.Filter):
    """Hides registered credentials in the records of the ``httpx`` logger, which logs every
    request's URL at INFO — with any token sent as a query parameter (ENTSO-E's
    ``securityToken``, Open-Meteo's ``apikey``)."""

    def __init__(self) -> None:
        super().__init__()
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        if value:
            with self._lock:
                self._values.add(value)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._values:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        hidden = message
        for value in tuple(self._values):
            hidden = hidden.replace(value, "***")
        if hidden != message:
            record.msg, record.args = hidden, None
        return True


_HTTPX_LOG = _HttpxLogRedactor()
logging.getLogger("httpx").addFilter(_HTTPX_LOG)


@dataclass
class Credentials:
    """Where credentials come from: environment variables, or a secrets file (YAML mapping of
    name to value, named in the config) that takes precedence over the environment.

    A missing credential is an :class:`~wattroute.errors.InputError` naming the variable and
    the file, never its value.
    """

    file: Path | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    _loaded: dict[str, str] | None = field(default=None, init=False, repr=False)

    def _file_values(self) -> dict[str, str]:
        if self._loaded is None:
            self._loaded = {}
            if self.file is not None:
                try:
                    raw = yaml.safe_load(self.file.read_text(encoding="utf-8")) or {}
                except FileNotFoundError:
                    raise InputError(
                        "signals.secrets_file",
                        f"{self.file} not found.",
                        "create it (a YAML mapping of name: value) or remove the setting.",
                    ) from None
                except (OSError, yaml.YAMLError):
                    raise InputError(
                        "signals.secrets_file",
                        f"{self.file} cannot be read as YAML.",
                        "write it as a YAML mapping of name: value.",
                    ) from None
                if not isinstance(raw, dict):
                    raise InputError(
                        "signals.secrets_file",
                        f"{self.file} is not a mapping.",
                        "write it as a YAML mapping of name: value.",
                    )
                self._loaded = {str(k): str(v) for k, v in raw.items() if v is not None}
        return self._loaded

    def has(self, name: str) -> bool:
        return bool(self._file_values().get(name) or self.environ.get(name))

    def get(self, name: str, field_name: str) -> Secret:
        """The credential ``name`` (file first, then environment); ``field_name`` is the
        config field that asks for it, for the error."""
        value = self._file_values().get(name) or self.environ.get(name)
        if not value:
            where = f" or in {self.file}" if self.file is not None else ""
            raise InputError(
                field_name,
                f"the credential {name} is not set in the environment{where}.",
                f"export {name}=... or add it to the secrets file named by signals.secrets_file.",
            )
        return Secret(value)


@dataclass
class RequestBudget:
    """At most ``per_minute`` requests in any 60 s and ``per_month`` in a calendar month
    (UTC) to one provider; ``None``: no limit. ``clock`` gives epoch seconds (injected)."""

    per_minute: int | None = None
    per_month: int | None = None
    clock: Callable[[], float] = time.time
    _recent: deque[float] = field(default_factory=deque, init=False, repr=False)
    _month: tuple[int, int] = field(default=(0, 0), init=False, repr=False)
    _month_count: int = field(default=0, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def used_this_month(self) -> int:
        return self._month_count

    def take(self, provider: str) -> None:
        """Count one request, or raise :class:`BudgetExhausted` without counting it."""
        with self._lock:
            now = self.clock()
            utc = time.gmtime(now)
            month = (utc.tm_year, utc.tm_mon)
            if month != self._month:
                self._month, self._month_count = month, 0
            while self._recent and self._recent[0] <= now - 60.0:
                self._recent.popleft()
            if self.per_minute is not None and len(self._recent) >= self.per_minute:
                wait = self._recent[0] + 60.0 - now
                raise BudgetExhausted(
                    provider, f"request budget of {self.per_minute} per minute spent", wait
                )
            if self.per_month is not None and self._month_count >= self.per_month:
                year, mon = month
                nxt = time.mktime((year + mon // 12, mon % 12 + 1, 1, 0, 0, 0, 0, 0, 0))
                wait = nxt - time.timezone - now
                raise BudgetExhausted(
                    provider, f"request budget of {self.per_month} per month spent", wait
                )
            self._recent.append(now)
            self._month_count += 1


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; between them ``backoff_s x 2^i`` seconds (at most
    ``max_backoff_s``), or what a 429's or 503's ``Retry-After`` asks if that is at most
    ``max_retry_after_s`` (a longer wait is not sat out: the error says when to come back)."""

    attempts: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    max_retry_after_s: float = 30.0

    def delay(self, attempt: int) -> float:
        return float(min(self.backoff_s * 2**attempt, self.max_backoff_s))


def retry_after_s(response: Any, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date), from
    an httpx or requests response (or anything with a ``headers`` mapping); ``None`` if it
    has none."""
    headers = getattr(response, "headers", None) or {}
    raw = headers.get("retry-after") or headers.get("Retry-After")
    if raw is None:
        return None
    raw = str(raw).strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return max(when.timestamp() - now, 0.0)


class ApiClient:
    """GET/POST against one provider's API with the shared behaviour.

    Parameters
    ----------
    provider
        The provider's name, for errors, logs and the budget.
    base_url
        Its API root; tests point it at 127.0.0.1.
    timeout_s
        Connect and read timeout per request, seconds.
    retry
        How often and how long to retry timeouts, 5xx and 429.
    budget
        Requests allowed per minute and month (shared by every source of the provider).
    transport
        An httpx transport (``httpx.MockTransport`` in tests).
    secrets
        Values to hide in every URL that is logged or put in an error (a token passed as a
        query parameter, as ENTSO-E's ``securityToken``).
    sleep
        How to wait between retries (injected by tests).
    """

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        budget: RequestBudget | None = None,
        transport: httpx.BaseTransport | None = None,
        secrets: Iterable[Secret] = (),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.provider = provider
        self.retry = retry or RetryPolicy()
        self.budget = budget or RequestBudget()
        self._secrets: list[str] = []
        for secret in secrets:
            self.add_secret(secret)
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
            follow_redirects=False,
            headers={"user-agent": "wattroute"},
        )
        self.requests = 0  # sent, retries included

    def close(self) -> None:
        self._client.close()

    def add_secret(self, secret: Secret) -> None:
        """Hide ``secret`` in every URL and body this client puts in an error, and in the
        ``httpx`` logger's request lines."""
        value = secret.reveal()
        if value and value not in self._secrets:
            self._secrets.append(value)
        _HTTPX_LOG.add(value)

    def hidden(self, exc: PayloadError) -> PayloadError:
        """``exc`` with every secret of this client hidden in its message (an answer that
        echoes a credential, quoted in the error)."""
        problem = self._redact(exc.problem)
        return exc if problem == exc.problem else PayloadError(exc.provider, problem)

    def _redact(self, text: str) -> str:
        for value in self._secrets:
            if value:
                text = text.replace(value, "***")
        return text

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
    ) -> httpx.Response:
        """Send, retrying timeouts, connection errors, 5xx and 429; the response of a 2xx.

        Raises
        ------
        AuthError, RateLimited, BudgetExhausted, Unavailable, ProviderError
        """
        last: ProviderError | None = None
        for attempt in range(self.retry.attempts):
            self.budget.take(self.provider)
            self.requests += 1
            try:
                response = self._client.request(
                    method, path, params=params, headers=headers, json=json, auth=auth
                )
            except httpx.TimeoutException:
                last = Unavailable(self.provider, f"timed out ({method} {self._where(path)})")
                wait = self.retry.delay(attempt)
            except httpx.TransportError as exc:
                last = Unavailable(
                    self.provider,
                    f"cannot connect ({type(exc).__name__}, {method} {self._where(path)})",
                )
                wait = self.retry.delay(attempt)
            else:
                status = response.status_code
                if status < 300:
                    return response
                where = f"{method} {self._where(path)}"
                if status in (401, 403):
                    raise AuthError(
                        self.provider,
                        f"refused the credentials (HTTP {status}, {where}); check the token "
                        "and its access to this endpoint",
                    )
                asked = retry_after_s(response)
                if status == 429:
                    last = RateLimited(self.provider, f"rate limited (HTTP 429, {where})", asked)
                elif status >= 500:
                    last = Unavailable(self.provider, f"HTTP {status} ({where})")
                else:
                    raise ProviderError(
                        self.provider, f"HTTP {status} ({where}): {self._body(response)}"
                    )
                if asked is not None and asked > self.retry.max_retry_after_s:
                    break  # not sat out here: the caller falls back and comes back later
                wait = asked if asked is not None else self.retry.delay(attempt)
            if attempt + 1 < self.retry.attempts:
                log.info(
                    "provider retry",
                    extra={
                        "fields": {
                            "provider": self.provider,
                            "error": last.problem,
                            "wait_s": round(wait, 3),
                        }
                    },
                )
                self._sleep(wait)
        assert last is not None
        raise last

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        """GET and decode JSON; :class:`PayloadError` if the body is not JSON."""
        response = self.get(path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise PayloadError(
                self.provider, f"answered {path} with a body that is not JSON"
            ) from None

    def _where(self, path: str) -> str:
        return self._redact(path)

    def _body(self, response: httpx.Response) -> str:
        return self._redact(response.text[:200].replace("\n", " "))
