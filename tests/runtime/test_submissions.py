"""Admitting a job: the rules every submission passes, checked without HTTP."""

from __future__ import annotations

import pandas as pd
import pytest

from wattroute.errors import InputError
from wattroute.runtime.registry import CodeRegistry
from wattroute.runtime.submissions import FleetRules, JobRequest, PeriodOverError, admit_job

NOW = pd.Timestamp("2023-06-01T00:00:00Z")
RULES = FleetRules({"a": 4, "b": 8}, NOW + pd.Timedelta(days=7), CodeRegistry.builtin())


def _admit(rules: FleetRules = RULES, now: pd.Timestamp = NOW, **change):
    request = JobRequest(
        **{
            "name": "j",
            "work_accelerator_hours": 8.0,
            "max_accelerators": 2,
            "slack_h": 2.0,
            **change,
        }
    )
    return admit_job(request, "acme", now, rules, "id-1", "key", "hash")


def test_a_job_that_passes_becomes_the_record_to_store():
    job = _admit(function="train-logistic-regression", args={"epochs": 3})
    assert job.deadline == NOW + pd.Timedelta(hours=4 + 2)
    assert (job.id, job.tenant, job.idempotency_key, job.request_hash) == (
        "id-1",
        "acme",
        "key",
        "hash",
    )
    assert job.function == "train-logistic-regression"
    assert job.args == {"epochs": 3}


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"slack_h": None}, "deadline", "exactly one of deadline or slack_h"),
        ({"min_accelerators": 3}, "min_accelerators", "exceeds max_accelerators"),
        ({"allowed_sites": ("mars",)}, "allowed_sites", "unknown site"),
        ({"allowed_sites": ()}, "allowed_sites", "no site allowed"),
        (
            {"min_accelerators": 6, "max_accelerators": 6, "allowed_sites": ("a",)},
            "min_accelerators",
            "largest allowed site has 4",
        ),
        ({"slack_h": None, "deadline": NOW + pd.Timedelta(hours=1)}, "deadline", "needs 4.00 h"),
        ({"slack_h": 24 * 30.0}, "deadline", "after the end of the planned period"),
        ({"function": "os:system"}, "function", "not a registered job function"),
    ],
)
def test_a_job_that_breaks_a_rule_is_refused_naming_the_field(change, field, words):
    with pytest.raises(InputError, match=words) as error:
        _admit(**change)
    assert error.value.field == field
    assert error.value.fix


def test_an_execution_engine_needs_registered_code():
    rules = FleetRules(RULES.accelerators, RULES.period_end, RULES.registry, code_required=True)
    with pytest.raises(InputError, match="train-logistic-regression") as error:
        _admit(rules)
    assert error.value.field == "function"


def test_nothing_is_admitted_once_the_period_is_over():
    with pytest.raises(PeriodOverError, match="signals end"):
        _admit(now=RULES.period_end)
