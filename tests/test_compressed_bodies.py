"""Document batches sent compressed (Content-Encoding gzip or deflate), and the limits a
compressed body is held to."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from docuseek.api.app import create_app
from docuseek.search.base import SearchBackend
from docuseek.settings import Settings
from tests.helpers import ADMIN_KEY, BOOK_FIELDS, Service
from tests.test_bad_input import assert_error, stored_counts

DOCS = [{"id": str(i), "title": f"compressed book {i}"} for i in range(50)]


def post(service: Service, body: bytes, encoding: str, ndjson: bool = False) -> object:
    content_type = "application/x-ndjson" if ndjson else "application/json"
    return service.client.post(
        "/collections/books/documents",
        content=body,
        headers={"content-type": content_type, "content-encoding": encoding},
    )


def test_gzip_and_deflate_batches_are_stored_like_plain_ones(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    array = json.dumps(DOCS[:25]).encode()
    lines = "\n".join(json.dumps(d) for d in DOCS[25:]).encode()
    for response in (
        post(service, gzip.compress(array), "gzip"),
        post(service, zlib.compress(lines), "deflate", ndjson=True),
        post(service, array, "identity"),
    ):
        assert response.status_code == 202, response.text  # type: ignore[attr-defined]
    service.drain()
    assert service.search("books", q="compressed", limit=100)["total"] == 50
    patch = service.client.patch(
        "/collections/books/documents",
        content=gzip.compress(json.dumps([{"id": "1", "title": "patched"}]).encode()),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert patch.status_code == 202, patch.text
    service.drain()
    assert [h["id"] for h in service.search("books", q="patched")["hits"]] == ["1"]


def test_bad_compressed_bodies_are_refused_and_store_nothing(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    before = stored_counts(service)
    body = json.dumps(DOCS).encode()
    assert_error(post(service, body, "br"), 415, "'br' is not supported", "gzip")
    assert_error(post(service, body, "gzip"), 400, "not valid gzip")
    assert_error(post(service, gzip.compress(body)[:-20], "gzip"), 400, "ends before")
    assert_error(post(service, gzip.compress(body) + b"junk", "gzip"), 400, "after the end")
    assert stored_counts(service) == before


@pytest.fixture
def small_body_service(
    engine: Engine, backend: SearchBackend, settings: Settings
) -> Iterator[Service]:
    limited = settings.model_copy(update={"max_body_bytes": 100_000})
    with TestClient(
        create_app(limited, engine, backend), headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ) as client:
        yield Service(client, engine, backend, limited)


def test_a_compressed_body_over_the_limit_once_unpacked_gets_413(
    small_body_service: Service,
) -> None:
    service = small_body_service
    service.create_collection("books", BOOK_FIELDS)
    before = stored_counts(service)
    # 10 MB of one document's text packs into about 10 kB: a bomb for a 100 kB limit.
    bomb = gzip.compress(json.dumps([{"id": "1", "title": "x" * 10_000_000}]).encode())
    assert len(bomb) < 100_000
    assert_error(post(service, bomb, "gzip"), 413, "decompressed body", "100000 bytes")
    small = gzip.compress(json.dumps(DOCS).encode())
    assert post(service, small, "gzip").status_code == 202  # type: ignore[attr-defined]
    assert stored_counts(service)[0] == before[0] + len(DOCS)
