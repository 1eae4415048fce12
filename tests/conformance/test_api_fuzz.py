"""Every operation of the API, fuzzed from its OpenAPI schema (schemathesis), on each
search backend: no input may get a 500. This is how the NUL, surrogate and bigint 500s
of test_unstorable_input were found; it runs derandomized, so a failure reproduces."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.helpers import ADMIN_KEY, BOOK_FIELDS, Service

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def test_no_request_gets_a_server_error(service: Service) -> None:
    # A real collection with documents, so that most cases reach the search and write
    # paths instead of stopping at "collection does not exist".
    service.create_collection("books", BOOK_FIELDS)
    service.add(
        "books",
        [
            {"id": str(i), "title": f"word{i} lazy fox", "section": "s", "year": 2000 + i}
            for i in range(30)
        ],
    )
    service.drain()
    schema = schemathesis.openapi.from_asgi("/openapi.json", service.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 17

    # Each operation gets its own derandomized run (schemathesis's pytest plugin needs
    # the schema at collection time, before the database exists).
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=60,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case: Any) -> None:
            if "name" in (case.path_parameters or {}) and case.method != "DELETE":
                case.path_parameters["name"] = "books"
            case.call_and_validate(headers=AUTH, checks=[not_a_server_error])

        no_server_error()
