"""Property-based fuzzing of every operation in the OpenAPI schema: no input makes the service fail.

Schemathesis generates requests from the published schema, valid ones and ones that break it,
and checks every response: never a 5xx, and each conforms to what the schema documents.
Bounded in examples per operation so that the suite stays fast.

One check is left out: ``positive_data_acceptance`` expects every schema-valid body to be
accepted, but some rules span fields and the clock (a deadline the work cannot meet, a grid event
that ends before it starts, a service time longer than its SLO) and cannot be said in JSON
Schema; those are refused with 422 naming the field, which the API tests cover.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from benchmarks.reliability import CHECKS
from tests.service.helpers import Service, make_service, sqlite_url

EXAMPLES_PER_OPERATION = 20


@pytest.fixture
def fuzzed(tmp_path) -> Iterator[Service]:
    service = make_service(sqlite_url(tmp_path))
    with service.client:
        service.tick()
        yield service


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_makes_the_service_fail(fuzzed: Service, mode: GenerationMode) -> None:
    # Invalid data is rejected with any 4xx that says why, 413 (a body over the size limit)
    # included, as in the reliability benchmark.
    config = schemathesis.config.SchemathesisConfig.from_str(CHECKS)
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed.client.app, config=config)
    admin = fuzzed.token("ops", "admin")

    @schema.auth()
    class AdminToken:
        """Every request carries an admin token (through the schema's bearer scheme)."""

        def get(self, case: schemathesis.Case, context: object) -> str:
            return admin["Authorization"]

        def set(self, case: schemathesis.Case, data: str, context: object) -> None:
            case.headers = {**(case.headers or {}), "Authorization": data}

    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15  # every route is in the schema

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: schemathesis.Case) -> None:
            case.call_and_validate(excluded_checks=[checks.positive_data_acceptance])

        try:
            exercise()
        except Unsatisfiable:
            # Nothing in this operation can be made invalid (its only input is the optional
            # token header): negative mode has no case to send.
            assert mode is GenerationMode.NEGATIVE, operation.label
        except (
            Exception,
            BaseExceptionGroup,
        ) as failure:  # collect every operation's failure, then report all
            failures.append(f"{operation.label}: {failure}")
    assert not failures, "\n\n".join(failures)
