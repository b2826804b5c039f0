"""Scopes: what each grants, and what a token's stored scopes allow."""

from __future__ import annotations

import pytest

from wattroute.errors import InputError
from wattroute.service.auth import Principal, parse_scopes, token_hash


def test_each_scope_implies_the_lesser_ones():
    assert parse_scopes("read") == {"read"}
    assert parse_scopes("submit") == {"read", "submit"}
    assert parse_scopes("admin") == {"read", "submit", "admin"}
    # A token stored with only its own scope still gets what it implies.
    submitter = Principal("acme", frozenset({"submit"}))
    assert submitter.may("read")
    assert submitter.may("submit")
    assert not submitter.may("admin")
    assert not submitter.admin


@pytest.mark.parametrize("text", ["", "root", "read,root"])
def test_unknown_or_missing_scopes_are_refused_naming_the_option(text):
    with pytest.raises(InputError) as error:
        parse_scopes(text)
    assert "--scope" in str(error.value)


def test_tokens_are_stored_as_a_hash():
    digest = token_hash("wr_secret")
    assert "secret" not in digest
    assert len(digest) == 64
    assert digest == token_hash("wr_secret")
