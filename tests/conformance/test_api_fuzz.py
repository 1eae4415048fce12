"""Every operation of the API, fuzzed from its OpenAPI schema (schemathesis), on each
search backend: no input may get a 500. This is how the NUL, surrogate and bigint 500s
of test_unstorable_input were found; it runs derandomized, so a failure reproduces."""

from __future__ import annotations

import itertools
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
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


def _link(schema: dict[str, Any], path: str, method: str, **definition: Any) -> dict[str, Any]:
    return {"operationId": schema["paths"][path][method]["operationId"], **definition}


# OpenAPI links (added to the served schema here, for the fuzzer): from the collections,
# write to one, follow the write's task, read the document, search the collection, and page
# on with the cursor the search returned. Literal bodies where a generated one would
# rarely be accepted (a write needs string ids); the rest is the fuzzer's.
def _with_links(raw: dict[str, Any]) -> dict[str, Any]:
    collection, documents = "/collections/{name}", "/collections/{name}/documents"
    search, task = "/collections/{name}/search", "/tasks/{task_id}"
    same_name = {"path.name": "$request.path.name"}
    exactly = {"x-schemathesis": {"merge_body": False}}
    listed = {"path.name": "$response.body#/0/name"}
    doc = [{"id": "linked", "title": "lazy fox linked", "year": 7}]
    links: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
        # The list is where a sequence starts (the fuzzer starts with listings and
        # creations by POST); the test points every step at the scenario's collection.
        ("/collections", "get"): {
            "Write": _link(raw, documents, "post", parameters=listed, requestBody=doc, **exactly),
            "Search": _link(
                raw, search, "get", parameters={**listed, "query.q": "fox", "query.limit": 1}
            ),
        },
        (collection, "put"): {
            "Write": _link(
                raw, documents, "post", parameters=same_name, requestBody=doc, **exactly
            ),
        },
        (documents, "post"): {
            "Task": _link(raw, task, "get", parameters={"path.task_id": "$response.body#/task_id"}),
            "Search": _link(
                raw,
                search,
                "post",
                parameters=same_name,
                requestBody={"q": "fox", "limit": 1},
                **exactly,
            ),
            "Read": _link(
                raw,
                "/collections/{name}/documents/{doc_id}",
                "get",
                parameters={**same_name, "path.doc_id": "$request.body#/0/id"},
            ),
        },
        (search, "get"): {
            "NextPage": _link(
                raw,
                search,
                "get",
                parameters={
                    **same_name,
                    "query.q": "$request.query.q",
                    "query.limit": "$request.query.limit",
                    "query.cursor": "$response.body#/next_cursor",
                },
            ),
        },
        (search, "post"): {
            "NextPage": _link(
                raw,
                search,
                "post",
                parameters=same_name,
                requestBody={
                    "q": "$request.body#/q",
                    "limit": "$request.body#/limit",
                    "cursor": "$response.body#/next_cursor",
                },
                **exactly,
            ),
        },
    }
    # A linked body needs one media type to go by (schemathesis cannot choose); the
    # stateless test above fuzzes the NDJSON form.
    del raw["paths"][documents]["post"]["requestBody"]["content"]["application/x-ndjson"]
    for (path, method), named in links.items():
        responses = raw["paths"][path][method]["responses"]
        for status in [s for s in responses if s.startswith("2")]:
            responses[status]["links"] = named
    return raw


def test_stateful_sequences_get_no_server_error(service: Service) -> None:
    """Sequences along the links, so that the task ids and cursors the fuzzer sends are
    ones the API gave out; derandomized, and bounded in scenarios and steps."""
    raw = _with_links(service.client.get("/openapi.json").json())
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = service.client.app
    # Only the linked operations, and only the links above (no inferred ones): a step's
    # outcome must not depend on what earlier scenarios did (hypothesis checks that).
    schema.config.phases.stateful.inference.algorithms = []
    schema = schema.include(
        path_regex=r"^/(collections|collections/\{name\}.*|tasks/\{task_id\})$"
    ).exclude(method="DELETE")
    given_out: dict[str, set[Any]] = {"tasks": set(), "cursors": set()}
    sent_back: dict[str, int] = {"tasks": 0, "cursors": 0}
    scenarios = itertools.count()

    class Sequences(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Each scenario on a collection of its own, with a few indexed documents.
            self.collection = f"seq{next(scenarios)}"
            service.create_collection(self.collection, BOOK_FIELDS)
            docs = [{"id": str(i), "title": "lazy fox", "year": i} for i in range(5)]
            service.add(self.collection, docs)
            service.drain()

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": AUTH}

        def before_call(self, case: Any) -> None:
            case.headers = {**(case.headers or {}), **AUTH}
            path = case.path_parameters or {}
            if path.get("name") is not None:
                path["name"] = self.collection
            if path.get("task_id") in given_out["tasks"]:
                sent_back["tasks"] += 1
            body = case.body if isinstance(case.body, dict) else {}
            cursor = (case.query or {}).get("cursor") or body.get("cursor")
            if isinstance(cursor, str) and cursor in given_out["cursors"]:
                sent_back["cursors"] += 1

        def after_call(self, response: Any, case: Any) -> None:
            try:
                data = response.json()
            except ValueError:
                return
            if not isinstance(data, dict):
                return
            if response.status_code == 202 and "task_id" in data:
                given_out["tasks"].add(data["task_id"])
            if response.status_code == 200 and data.get("next_cursor"):
                given_out["cursors"].add(data["next_cursor"])

        def validate_response(self, response: Any, case: Any, *args: Any, **kwargs: Any) -> None:
            assert response.status_code < 500, (case.method, case.path, response.text)

    Sequences.run(
        settings=settings(
            max_examples=30,
            stateful_step_count=8,
            # No replay or shrinking: the steps' outcomes depend on the database, which
            # earlier scenarios changed, and hypothesis would call a replay flaky.
            phases=[Phase.generate],
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    # The links were followed: writes went through, and cursors the API gave out went
    # back to it. (Whether a write's task link is taken in a run varies with the
    # responses, as schemathesis draws links from the outcomes of the steps.)
    assert given_out["tasks"] and sent_back["cursors"] > 0, (sent_back, given_out)
