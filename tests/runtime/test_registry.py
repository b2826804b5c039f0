"""The code registry: what each tenant may name."""

from __future__ import annotations

import pytest

from wattroute.runtime.registry import CodeEntry, CodeRegistry

ENTRY = "wattroute.execution.examples:train_logistic_regression"


def test_entries_open_to_some_tenants_are_closed_to_the_rest():
    registry = CodeRegistry.of(
        [CodeEntry("train", ENTRY), CodeEntry("private", ENTRY, frozenset({"acme"}))]
    )
    assert registry.allowed("job", "acme") == ["private", "train"]
    assert registry.allowed("job", "globex") == ["train"]
    assert registry.lookup("job", "private", "globex") is None
    assert registry.lookup("job", "private", "acme") == CodeEntry(
        "private", ENTRY, frozenset({"acme"})
    )
    assert registry.lookup("handler", "train", "acme") is None  # jobs are not handlers
    assert registry.refusal("job", "os:system", "globex") == (
        "'os:system' is not a registered job function",
        "use one of: train",
    )
    _, fix = registry.refusal("handler", "x", "globex")
    assert "no inference handler is registered for you" in fix


def test_the_builtin_registry_holds_the_examples_that_ship():
    builtin = CodeRegistry.builtin()
    assert builtin.allowed("job", "anyone") == ["train-logistic-regression"]
    assert builtin.allowed("handler", "anyone") == ["mlp"]


@pytest.mark.parametrize(
    ("name", "entry", "words"),
    [
        ("os:system", ENTRY, "registered name"),
        ("ok", "os.system", "module.path:function"),
        ("ok", "import os; os:system", "module.path:function"),
    ],
)
def test_entries_are_checked_when_made(name, entry, words):
    with pytest.raises(ValueError, match=words):
        CodeEntry(name, entry)
