"""Schemathesis drives every API operation with inputs generated from the OpenAPI document, valid
and invalid: whatever arrives, the server answers without a 5xx and, for the valid ones, in the
documented shape."""

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import API_KEY, Client

# Per operation and mode: with some 90 operations on two databases, the suite's largest cost
# (6 took 56 s of CPU, three quarters of it generating the inputs: 3 take half); every operation
# is still called in both modes, valid and invalid inputs alike.
EXAMPLES_PER_OPERATION = 3


def operations(client: Client) -> list[Any]:
    document = httpx.get(f"{client.node.base_url}/api/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_makes_the_api_fail(client: Client, mode: GenerationMode) -> None:
    checks = [not_a_server_error]
    if mode is GenerationMode.POSITIVE:
        checks.append(response_schema_conformance)
    ops = operations(client)
    assert len(ops) >= 15
    for operation in ops:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case: Any) -> None:
            case.call_and_validate(
                base_url=f"{client.node.base_url}/api",
                headers={"Authorization": f"Bearer {API_KEY}"},
                checks=checks,
            )

        call()
