"""Property-based tests against the app's own OpenAPI: no 5xx, and every response matches it."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from tests.api.conftest import auth, seed

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def admin_key(settings, session):
    return seed(session)["keys"]["admin"]


@pytest.fixture
def app_schema(settings, admin_key):
    # Enough requests per minute that the limiter never answers for the generated cases.
    app = create_app(settings.model_copy(update={"rate_limit_per_minute": 100_000}))
    with TestClient(app):
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        schema.app_under_test = app  # type: ignore[attr-defined]
        yield schema


def test_api_conforms_to_its_openapi(app_schema, admin_key):
    # schemathesis' pytest loader (from_fixture) does not run under pytest 9; drive each
    # operation's Hypothesis strategy directly instead.
    operations = [result.ok() for result in app_schema.get_all_operations()]
    assert len(operations) >= 14
    for op in operations:

        @given(case=op.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            case.call_and_validate(headers=auth(admin_key), checks=CHECKS)

        try:
            check()
        except Exception as e:
            raise AssertionError(f"{op.label}: {e}") from e
    # The cases really reached the app, and some were accepted, some refused.
    seen = app_schema.app_under_test.state.metrics.requests
    statuses = {status for (_, _, status) in seen}
    assert sum(seen.values()) > 4 * len(operations)
    assert {"200", "422"} <= statuses, statuses
