"""ENTSO-E day-ahead prices and generation-mix carbon, over an ``httpx.MockTransport``."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from wattroute.errors import InputError
from wattroute.runtime.providers.entsoe_area import (
    LIFECYCLE_G_PER_KWH,
    EntsoeMixCarbon,
    EntsoePrices,
    entsoe_client,
    resolve_area,
)
from wattroute.runtime.providers.http import (
    ApiClient,
    AuthError,
    PayloadError,
    ProviderError,
    RetryPolicy,
    Secret,
    Unavailable,
)

FIXTURES = Path(__file__).parent / "fixtures" / "entsoe"
TOKEN = "tok-3f9a1c77-entsoe-SECRET"
BASE = "https://entsoe.test/api"
RATE = 1.0825  # USD per EUR
NOW = pd.Timestamp("2024-10-28T09:00Z")


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def xml(text: str, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, text=text, headers={"content-type": "text/xml", **(headers or {})}
    )


class Server:
    """Answers requests in turn from a script; records the requests."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def make_client(server: Server, sleeps: list[float] | None = None) -> ApiClient:
    waits = sleeps if sleeps is not None else []
    return entsoe_client(
        Secret(TOKEN),
        base_url=BASE,
        retry=RetryPolicy(attempts=3, backoff_s=0.25),
        transport=httpx.MockTransport(server),
        sleep=waits.append,
    )


def prices(server: Server, sleeps: list[float] | None = None, area: str = "DE_LU") -> EntsoePrices:
    return EntsoePrices(make_client(server, sleeps), Secret(TOKEN), area, usd_per_eur=RATE)


def mix(server: Server, sleeps: list[float] | None = None) -> EntsoeMixCarbon:
    return EntsoeMixCarbon(make_client(server, sleeps), Secret(TOKEN), "FR")


# -- areas and construction ---------------------------------------------------------------


def test_area_by_name_or_eic():
    assert resolve_area("DE_LU") == ("DE_LU", "10Y1001A1001A82H")
    assert resolve_area("de_lu") == ("DE_LU", "10Y1001A1001A82H")
    assert resolve_area("10YFR-RTE------C") == ("FR", "10YFR-RTE------C")


def test_unknown_area_is_an_input_error():
    with pytest.raises(InputError, match="ATLANTIS"):
        resolve_area("ATLANTIS", "sites[0].entsoe_area")


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan")])
def test_rate_must_be_positive(rate):
    with pytest.raises(ValueError, match="usd_per_eur"):
        EntsoePrices(make_client(Server(xml(""))), Secret(TOKEN), "DE_LU", usd_per_eur=rate)


# -- prices -------------------------------------------------------------------------------


def test_dst_day_hourly_prices_in_usd():
    server = Server(xml(fixture("prices_dst_pt60m.xml")))
    source = prices(server)
    start, end = pd.Timestamp("2024-10-26T22:00Z"), pd.Timestamp("2024-10-27T23:00Z")

    got = source.fetch(start, end, NOW)

    # the request
    (request,) = server.requests
    q = request.url.params
    assert q["documentType"] == "A44"
    assert q["in_Domain"] == q["out_Domain"] == "10Y1001A1001A82H"
    assert q["contract_MarketAgreement.type"] == "A01"
    assert q["classificationSequence_AttributeInstanceComponent.position"] == "1"
    assert q["periodStart"] == "202410262200"
    assert q["periodEnd"] == "202410272300"
    assert q["securityToken"] == TOKEN
    # the answer: 25 hours (the CET day the clocks go back), UTC, a gap at position 6
    assert (got.signal, got.source, got.kind) == ("price_usd_per_mwh", "entsoe", "day-ahead")
    assert len(got) == 25
    assert got.times[0] == start
    assert got.times[-1] == pd.Timestamp("2024-10-27T22:00Z")
    assert str(got.times.tz) == "UTC"
    assert got.interval == pd.Timedelta(hours=1)
    assert not got.forecast.any()
    expected = np.array([(50 + p + 0.25) * RATE for p in range(1, 26)])
    expected[5] = np.nan
    np.testing.assert_array_equal(got.values, expected)
    assert got.values[0] == 51.25 * RATE  # exact conversion
    assert got.fetched_at == NOW


def test_quarter_hour_a03_prices_repeat_omitted_positions():
    server = Server(xml(fixture("prices_pt15m_a03.xml")))
    got = prices(server).fetch(
        pd.Timestamp("2025-10-01T22:00Z"), pd.Timestamp("2025-10-02T00:00Z"), NOW
    )
    assert got.interval == pd.Timedelta(minutes=15)
    assert list(got.times) == list(
        pd.date_range("2025-10-01T22:00Z", periods=8, freq="15min", tz="UTC")
    )
    eur = [100.0, 100.0, 100.0, 90.5, -5.0, -5.0, 120.0, 121.0]
    np.testing.assert_array_equal(got.values, np.array(eur) * RATE)


def test_prices_trimmed_to_the_period_asked():
    server = Server(xml(fixture("prices_pt15m_a03.xml")))
    got = prices(server).fetch(
        pd.Timestamp("2025-10-01T22:30Z"), pd.Timestamp("2025-10-01T23:10Z"), NOW
    )
    assert list(got.times) == list(
        pd.date_range("2025-10-01T22:30Z", periods=3, freq="15min", tz="UTC")
    )
    # whole hours are asked for
    q = server.requests[0].url.params
    assert (q["periodStart"], q["periodEnd"]) == ("202510012200", "202510020000")


def test_no_matching_data_is_an_empty_answer():
    got = prices(Server(xml(fixture("no_data.xml")))).fetch(
        pd.Timestamp("2030-01-01T00:00Z"), pd.Timestamp("2030-01-02T00:00Z"), NOW
    )
    assert len(got) == 0
    assert got.kind == "day-ahead"


def test_no_matching_data_as_http_400_is_an_empty_answer():
    server = Server(xml(fixture("no_data.xml"), status=400))
    got = prices(server).fetch(
        pd.Timestamp("2030-01-01T00:00Z"), pd.Timestamp("2030-01-02T00:00Z"), NOW
    )
    assert len(got) == 0
    assert len(server.requests) == 1


def test_other_http_400_is_a_provider_error():
    server = Server(xml(fixture("bad_parameter.xml"), status=400))
    with pytest.raises(ProviderError, match="HTTP 400") as err:
        prices(server).fetch(NOW, NOW + pd.Timedelta(hours=1), NOW)
    assert TOKEN not in str(err.value)


def test_other_acknowledgement_is_a_payload_error():
    with pytest.raises(PayloadError, match="not valid"):
        prices(Server(xml(fixture("bad_parameter.xml")))).fetch(
            NOW, NOW + pd.Timedelta(hours=1), NOW
        )


def test_401_is_an_auth_error():
    server = Server(xml("<html><body>Unauthorized</body></html>", status=401))
    with pytest.raises(AuthError) as err:
        prices(server).fetch(NOW, NOW + pd.Timedelta(hours=1), NOW)
    assert len(server.requests) == 1
    assert TOKEN not in str(err.value)


def test_429_waits_as_asked_then_succeeds():
    sleeps: list[float] = []
    server = Server(
        xml("busy", status=429, headers={"Retry-After": "7"}),
        xml(fixture("prices_pt15m_a03.xml")),
    )
    got = prices(server, sleeps).fetch(
        pd.Timestamp("2025-10-01T22:00Z"), pd.Timestamp("2025-10-02T00:00Z"), NOW
    )
    assert sleeps == [7.0]
    assert len(got) == 8
    assert len(server.requests) == 2


def test_5xx_every_attempt_is_unavailable():
    sleeps: list[float] = []
    server = Server(xml("down", status=503))
    with pytest.raises(Unavailable, match="503") as err:
        prices(server, sleeps).fetch(NOW, NOW + pd.Timedelta(hours=1), NOW)
    assert len(server.requests) == 3
    assert sleeps == [0.25, 0.5]
    assert TOKEN not in str(err.value)


def test_timeout_is_unavailable():
    server = Server(httpx.ReadTimeout("read timed out"))
    with pytest.raises(Unavailable, match="timed out") as err:
        prices(server).fetch(NOW, NOW + pd.Timedelta(hours=1), NOW)
    assert len(server.requests) == 3
    assert TOKEN not in str(err.value)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("<Publication_MarketDocument><TimeSeries>", "not XML"),
        ("{}", "not XML"),
        ("<Other_MarketDocument/>", "Other_MarketDocument"),
    ],
)
def test_malformed_answers_are_payload_errors(body, match):
    with pytest.raises(PayloadError, match=match):
        prices(Server(xml(body))).fetch(NOW, NOW + pd.Timedelta(hours=1), NOW)


def test_unreadable_document_is_a_payload_error():
    with pytest.raises(PayloadError, match="cannot be read"):
        prices(Server(xml(fixture("prices_bad_resolution.xml")))).fetch(
            pd.Timestamp("2024-10-26T22:00Z"), pd.Timestamp("2024-10-26T23:00Z"), NOW
        )


def test_prices_not_in_euro_are_refused():
    with pytest.raises(PayloadError, match="GBP"):
        prices(Server(xml(fixture("prices_gbp.xml")))).fetch(
            pd.Timestamp("2024-10-26T22:00Z"), pd.Timestamp("2024-10-26T23:00Z"), NOW
        )


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # summer (CEST, UTC+2): before 12:45 local -> today 10:45Z
        ("2024-07-01T09:00Z", "2024-07-01T10:45Z"),
        # winter (CET, UTC+1): after 12:45 local -> tomorrow 11:45Z
        ("2024-01-15T12:00Z", "2024-01-16T11:45Z"),
        # the day before the clocks go back: next is on the CET day
        ("2024-10-26T11:00Z", "2024-10-27T11:45Z"),
        # the day the clocks go forward (CEST from 03:00 local)
        ("2024-03-31T00:30Z", "2024-03-31T10:45Z"),
        # exactly at publication: the next one
        ("2024-07-01T10:45Z", "2024-07-02T10:45Z"),
    ],
)
def test_next_publication_is_1245_brussels(now, expected):
    source = prices(Server(xml("")))
    assert source.next_publication(pd.Timestamp(now)) == pd.Timestamp(expected)


# -- generation mix -----------------------------------------------------------------------


def test_mix_carbon_arithmetic():
    server = Server(xml(fixture("generation_mix.xml")))
    source = mix(server)
    got = source.fetch(pd.Timestamp("2024-03-01T00:00Z"), pd.Timestamp("2024-03-01T03:00Z"), NOW)

    q = server.requests[0].url.params
    assert (q["documentType"], q["processType"], q["in_Domain"]) == (
        "A75",
        "A16",
        "10YFR-RTE------C",
    )
    assert "out_Domain" not in q
    assert (got.signal, got.kind, got.source) == ("carbon_g_per_kwh", "average/lifecycle", "entsoe")
    assert list(got.times) == list(pd.date_range("2024-03-01", periods=3, freq="h", tz="UTC"))
    assert not got.forecast.any()
    # hour 0: gas 1000, nuclear 5000, wind onshore 2000, pumped storage 500, solar 0 MW;
    # the 0 MW of pumping (consumption) is left out.
    hour0 = (1000 * 490 + 5000 * 12 + 2000 * 11 + 500 * 24 + 0 * 48) / (1000 + 5000 + 2000 + 500)
    # hour 1: wind onshore did not report -> a gap, not a mix without it
    # hour 2: gas 800, nuclear 5000, wind 1000, pumped storage 300 (pumping 0), solar 0
    hour2 = (800 * 490 + 5000 * 12 + 1000 * 11 + 300 * 24) / (800 + 5000 + 1000 + 300)
    assert hour0 == pytest.approx(584000 / 8500)
    np.testing.assert_allclose(got.values, [hour0, np.nan, hour2], rtol=1e-12)


def test_mix_ignores_consumption_columns():
    # Pumping 600 MW at hour 1 would change the mix if counted; with wind filled in it must not.
    text = fixture("generation_mix.xml").replace(
        "<position>3</position>\n        <quantity>1000</quantity>",
        "<position>2</position>\n        <quantity>1500</quantity>\n      </Point>\n"
        "      <Point>\n        <position>3</position>\n        <quantity>1000</quantity>",
    )
    got = mix(Server(xml(text))).fetch(
        pd.Timestamp("2024-03-01T00:00Z"), pd.Timestamp("2024-03-01T03:00Z"), NOW
    )
    hour1 = (1200 * 490 + 5000 * 12 + 1500 * 11 + 0 * 24) / (1200 + 5000 + 1500)
    assert got.values[1] == pytest.approx(hour1, rel=1e-12)


def test_mix_on_a_frame_with_mixed_resolutions():
    index = pd.date_range("2024-03-01", periods=8, freq="15min", tz="UTC")
    frame = pd.DataFrame(
        {
            "B04": [100.0, 200.0, 300.0, 400.0, 100.0, 100.0, 100.0, 100.0],
            "B14": [1000.0, np.nan, np.nan, np.nan, 2000.0, np.nan, np.nan, np.nan],
        },
        index=index,
    )
    values, step = mix(Server(xml(""))).intensity(frame)
    assert step == pd.Timedelta(hours=1)
    gas = [250.0, 100.0]
    nuclear = [1000.0, 2000.0]
    expected = [(g * 490 + n * 12) / (g + n) for g, n in zip(gas, nuclear, strict=True)]
    np.testing.assert_allclose(values.to_numpy(), expected, rtol=1e-12)


def test_factor_table_covers_every_production_type():
    assert {f"B{i:02d}" for i in range(1, 26)} == set(LIFECYCLE_G_PER_KWH)
    assert LIFECYCLE_G_PER_KWH["B02"] == LIFECYCLE_G_PER_KWH["B05"] == 820.0  # lignite = coal
    assert LIFECYCLE_G_PER_KWH["B06"] == 650.0


def test_mix_no_data_is_empty():
    got = mix(Server(xml(fixture("no_data.xml")))).fetch(NOW, NOW + pd.Timedelta(hours=3), NOW)
    assert len(got) == 0
    assert got.kind == "average/lifecycle"
    assert mix(Server(xml(""))).next_publication(NOW) is None


def test_mix_malformed_is_a_payload_error():
    text = fixture("generation_mix.xml").replace("<quantity>5000</quantity>", "<quantity/>", 1)
    with pytest.raises(PayloadError, match="generation document"):
        mix(Server(xml(text))).fetch(
            pd.Timestamp("2024-03-01T00:00Z"), pd.Timestamp("2024-03-01T03:00Z"), NOW
        )


# -- the token ----------------------------------------------------------------------------


def test_token_never_in_errors_or_logs(caplog):
    caplog.set_level(logging.DEBUG)
    errors: list[Exception] = []
    scripts = [
        Server(xml("down", status=500)),
        Server(xml(f"<html>bad token {TOKEN}</html>", status=401)),
        Server(xml(f"<Ack>{TOKEN}</Ack>", status=400)),
        Server(httpx.ConnectError(f"cannot reach {BASE}?securityToken={TOKEN}")),
        Server(xml("not xml")),
        Server(xml("busy", status=429, headers={"Retry-After": "120"})),
    ]
    for server in scripts:
        for make in (prices, mix):
            with pytest.raises(ProviderError) as err:
                make(server).fetch(NOW, NOW + pd.Timedelta(hours=1), NOW)
            errors.append(err.value)
    # a successful request is logged by httpx with its URL
    prices(Server(xml(fixture("no_data.xml")))).fetch(NOW, NOW + pd.Timedelta(hours=1), NOW)

    for error in errors:
        assert TOKEN not in str(error)
        assert TOKEN not in repr(error)
    assert caplog.records, "the requests should have been logged"
    assert any("entsoe.test" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in str(getattr(record, "fields", ""))
    assert TOKEN not in caplog.text
