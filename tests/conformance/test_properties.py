"""Properties over generated input, on both backends (hypothesis, derandomized and few
examples, so the run is the same each time and short):

- any JSON value in any field of a document is a 2xx or a 4xx, never a 5xx;
- a batch accepted with 202 is always indexable: its task succeeds on a real worker;
- anything as a cursor (text, base64 of any bytes, a real fingerprint with any values)
  is a 2xx or a 4xx.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.helpers import BOOK_FIELDS, Service

PROPERTY_SETTINGS = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Numbers at and beyond the edges: int64, a double's range, Python's int-string limit.
EDGE_INTEGERS = st.sampled_from(
    [0, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 10**308, 10**309, -(10**309), 10**400]
)
EDGE_FLOATS = st.sampled_from([1e308, -1e308, 5e-324, float("inf"), float("-inf"), float("nan")])
SCALARS = (
    EDGE_INTEGERS
    | EDGE_FLOATS
    | st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()  # lone surrogates and NUL included
    | st.sampled_from(["2024-02-30", "2024-01-01", "2024-01-01T25:00:00Z", "1e5", "", " "])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

# Offsets that carry the first and last moments of the years 1 to 9999 out of them in UTC.
OFFSETS = [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]
# Values a field of each type accepts: most generated documents then fail (or pass) on
# one field at a time, and accepted batches hold edge values too.
STORABLE_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))
VALID = {
    "text": STORABLE_TEXT,
    "keyword": STORABLE_TEXT | st.lists(STORABLE_TEXT, max_size=3),
    "integer": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**80), 2**80),
    "boolean": st.booleans(),
    "date": st.dates().map(lambda d: d.isoformat())
    | st.datetimes(timezones=st.none() | st.sampled_from(OFFSETS)).map(lambda d: d.isoformat()),
}


def field_values(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly values of the field's type, then edge numbers, then any JSON."""
    return st.integers(0, 9).flatmap(
        lambda k: valid if k < 6 else (EDGE_INTEGERS | EDGE_FLOATS) if k < 8 else JSON_VALUES
    )


FIELD_VALUES = {name: field_values(VALID[spec["type"]]) for name, spec in BOOK_FIELDS.items()}

# Every schema field (each may be left out), and other keys: the id, unmapped names.
DOCUMENTS = st.builds(
    lambda schema_fields, other, doc_id: {"id": "doc", **other, **schema_fields, **doc_id},
    st.fixed_dictionaries({}, optional=FIELD_VALUES),
    st.dictionaries(
        st.sampled_from(["extra", "note"]) | st.text(max_size=10), JSON_VALUES, max_size=1
    ),
    st.fixed_dictionaries({}, optional={"id": JSON_VALUES}),
)


def encode(value: Any) -> bytes:
    """As a client might send it: Python's encoder writes NaN and Infinity too, and
    escapes lone surrogates."""
    return json.dumps(value, allow_nan=True).encode()


def assert_not_5xx(response: Any, sent: Any) -> None:
    assert response.status_code < 500, (sent, response.text)
    if response.status_code >= 400:
        assert response.json()["error"]["message"]


def test_any_json_in_any_field_is_a_2xx_or_4xx_and_an_accepted_batch_is_indexed(
    service: Service,
) -> None:
    service.create_collection("books", BOOK_FIELDS)
    accepted: list[int] = []

    @PROPERTY_SETTINGS
    @given(batch=st.lists(DOCUMENTS, min_size=1, max_size=2), ndjson=st.booleans())
    @example(batch=[{"id": "doc", "price": 10**400}], ndjson=False)
    @example(batch=[{"id": "doc", "price": -(10**309)}, {"id": "b", "year": 1}], ndjson=True)
    @example(batch=[{"id": "doc", "published": "0001-01-01T00:00:00+01:00"}], ndjson=False)
    def check(batch: list[dict[str, Any]], ndjson: bool) -> None:
        if ndjson:
            body = b"\n".join(encode(doc) for doc in batch)
            content_type = "application/x-ndjson"
        else:
            body, content_type = encode(batch), "application/json"
        response = service.client.post(
            "/collections/books/documents", content=body, headers={"content-type": content_type}
        )
        assert_not_5xx(response, batch)
        if response.status_code == 202:
            task = response.json()["task_id"]
            accepted.append(task)
            service.drain()
            status = service.task(task)
            assert status["status"] == "succeeded", (batch, status)
            stored = service.client.get("/collections/books/documents/doc")
            assert stored.status_code == 200, stored.text

    check()
    assert accepted  # the property covered accepted batches, not only refused ones


def test_anything_as_a_cursor_is_a_2xx_or_4xx(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    service.add(
        "books",
        [{"id": f"d{i}", "title": "cursor words", "year": i, "price": i / 2} for i in range(6)],
    )
    service.drain()
    queries: list[dict[str, Any]] = [
        {"q": "cursor", "limit": 2},
        {"q": "cursor", "limit": 2, "sort": ["year:desc"]},
        {"limit": 2, "sort": ["price", "_id"]},
    ]
    real: list[dict[str, Any]] = []  # each query's cursor, decoded
    for query in queries:
        page = service.client.post("/collections/books/search", json=query).json()
        cursor = page["next_cursor"]
        assert cursor
        real.append(json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))))

    def forge(which: int) -> st.SearchStrategy[tuple[int, str]]:
        """The query's real fingerprint, with values of the real cursor's length (so the
        backend gets as far as using them) or anything else."""
        n = len(real[which]["v"])
        values = st.lists(JSON_VALUES, min_size=n, max_size=n) | JSON_VALUES
        return values.map(
            lambda v: (
                which,
                base64.urlsafe_b64encode(encode({"f": real[which]["f"], "v": v}))
                .decode()
                .rstrip("="),
            )
        )

    junk = st.text(max_size=200) | st.binary(max_size=200).map(
        lambda b: base64.urlsafe_b64encode(b).decode()
    )
    cursors = st.integers(0, len(queries) - 1).flatmap(forge) | st.tuples(
        st.integers(0, len(queries) - 1), junk
    )

    @PROPERTY_SETTINGS
    @given(case=cursors, as_get=st.booleans())
    def check(case: tuple[int, str], as_get: bool) -> None:
        which, cursor = case
        query = queries[which]
        if as_get and "\x00" not in cursor and cursor.isprintable() and _utf8(cursor):
            params = {**query, "cursor": cursor}
            if "sort" in params:
                params["sort"] = ",".join(params["sort"])
            response = service.client.get("/collections/books/search", params=params)
        else:
            body = encode({**query, "cursor": cursor})
            response = service.client.post(
                "/collections/books/search",
                content=body,
                headers={"content-type": "application/json"},
            )
        assert_not_5xx(response, (query, cursor, _decoded(cursor)))

    check()


def _utf8(text: str) -> bool:
    """Whether a URL can carry it (a lone surrogate cannot be percent-encoded)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _decoded(cursor: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        return None
