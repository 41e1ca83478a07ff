"""A bounded property-based fuzz of the server's OpenAPI schema (schemathesis): no body it can make gets a 5xx."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402

ROUTES = ["/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize", "/v1/models"]


@pytest.fixture(scope="module")
def operations(live):
    schema = schemathesis.openapi.from_url(live.url + "/openapi.json")
    ops = {op.path: op for op in (r.ok() for r in schema.get_all_operations())}
    assert set(ROUTES) <= set(ops), sorted(ops)
    return ops


@pytest.mark.slow
@pytest.mark.parametrize("route", ROUTES)
def test_no_request_the_schema_allows_gets_a_server_error(operations, route):
    operation = operations[route]

    @settings(max_examples=10, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def fuzz(data):
        case = data.draw(operation.as_strategy())
        case.call_and_validate(checks=[not_a_server_error], timeout=60)
    fuzz()
