"""Scopes, tenants and expiries: what a token grants, and how its options are read."""

from __future__ import annotations

import pandas as pd
import pytest

from wattroute.errors import InputError
from wattroute.service.auth import (
    Principal,
    check_tenant,
    parse_expiry,
    parse_scopes,
    stored_scopes,
    token_hash,
)

NOW = pd.Timestamp("2026-12-01T12:00:00Z")


def test_each_scope_implies_the_lesser_ones():
    assert parse_scopes("read") == {"read"}
    assert parse_scopes("submit") == {"read", "submit"}
    assert parse_scopes("metrics") == {"metrics"}
    assert parse_scopes("admin") == {"read", "submit", "metrics", "admin"}
    # A token stored with only its own scope still gets what it implies.
    submitter = Principal("acme", stored_scopes("submit"))
    assert submitter.may("read")
    assert submitter.may("submit")
    assert not submitter.may("metrics")
    assert not submitter.may("admin")
    assert not submitter.admin
    scraper = Principal("prometheus", stored_scopes("metrics"))
    assert scraper.may("metrics")
    assert not scraper.may("read")


@pytest.mark.parametrize("text", ["", "root", "read,root"])
def test_unknown_or_missing_scopes_are_refused_naming_the_option(text):
    with pytest.raises(InputError) as error:
        parse_scopes(text)
    assert "--scope" in str(error.value)


@pytest.mark.parametrize("tenant", ["", "a/b", "-x", "a b", "x" * 65, "é"])
def test_tenant_names_are_plain(tenant):
    with pytest.raises(InputError, match="--tenant"):
        check_tenant(tenant)
    assert check_tenant("acme-2.eu_west") == "acme-2.eu_west"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", NOW + pd.Timedelta(days=90)),
        ("12h", NOW + pd.Timedelta(hours=12)),
        ("30min", NOW + pd.Timedelta(minutes=30)),
        ("2027-01-01T00:00:00Z", pd.Timestamp("2027-01-01T00:00:00Z")),
        ("2027-01-01T02:00:00+02:00", pd.Timestamp("2027-01-01T00:00:00Z")),
    ],
)
def test_expiry_is_a_duration_or_a_time(text, expected):
    assert parse_expiry(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("soon", "cannot read"),
        ("2027-01-01T00:00:00", "no UTC offset"),
        ("2020-01-01T00:00:00Z", "in the past"),
        ("0d", "not a positive duration"),
    ],
)
def test_bad_expiries_name_the_option(text, problem):
    with pytest.raises(InputError, match=problem) as error:
        parse_expiry(text, NOW)
    assert error.value.field == "--expires"


def test_tokens_are_stored_as_a_hash():
    digest = token_hash("wr_secret")
    assert "secret" not in digest
    assert len(digest) == 64
    assert digest == token_hash("wr_secret")
