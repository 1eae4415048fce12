"""Search: GET with query parameters, or POST with the same as a JSON body."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

import pydantic_core
import structlog
from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from docuseek import collections
from docuseek.api.deps import (
    BackendDep,
    EngineDep,
    ReadEngineDep,
    SearchKey,
    SearchLimiterDep,
    check_collection,
)
from docuseek.api.search_context import SearchContext, search_context
from docuseek.api.search_request import (
    MAX_LIMIT,
    PREFIX_HELP,
    TYPO_HELP,
    SearchBody,
    build_query,
    encode_cursor,
    parse_filter_strings,
    query_from_body,
)
from docuseek.auth import Principal
from docuseek.errors import InvalidInput, SearchUnavailable
from docuseek.schema import Collection
from docuseek.search import forgiving
from docuseek.search.base import (
    BackendUnavailable,
    GenerationMissing,
    Hit,
    InvalidCursor,
    SearchBackend,
    SearchQuery,
    SearchResult,
)

router = APIRouter(prefix="/collections/{name}/search", tags=["search"])
log = structlog.get_logger("docuseek.api")


def _split(values: list[str]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _run(
    engine: Engine,
    read_engine: Engine,
    backend: SearchBackend,
    collection: Collection,
    query: SearchQuery,
) -> dict[str, Any]:
    """One search's response body: the hits, and what the response says beside them."""
    started = time.perf_counter()
    collection, result = search_index(engine, backend, collection, query)
    hit_ids = [h.id for h in result.hits]
    context = search_context(
        read_engine, collection.id, collection.name, query.q, hit_ids, result.state
    )
    return _response(collection, query, result, started, context)


def search_index(
    engine: Engine, backend: SearchBackend, collection: Collection, query: SearchQuery
) -> tuple[Collection, SearchResult]:
    """The backend's answer, with the collection as it was searched (a reindex may have
    switched its generation meanwhile); its failures as the api's errors."""
    name = collection.name

    def reload() -> Collection:
        # A reindex switched generations between loading the collection and the query,
        # or a DELETE is dropping its index: load it again once that has committed.
        collections.forget(name)
        return collections.load_settled(engine, name)

    try:
        collection, result = collections.retry_on_missing_generation(
            collection, lambda c: forgiving.search(backend, c, query), reload
        )
    except GenerationMissing as exc:  # still missing: lost, or dropped with the collection
        raise SearchUnavailable(
            f"the index of collection {collection.name!r} is missing ({exc}); writes are"
            f" still accepted and queued; rebuild it with"
            f" `docuseek reindex --collection {collection.name}`"
        ) from exc
    except BackendUnavailable as exc:
        # The driver's text can name hosts and socket paths: it goes to the log only.
        log.warning("search backend unavailable", collection=collection.name, error=str(exc))
        raise SearchUnavailable(
            "the search backend is unavailable; writes are still accepted and queued"
        ) from exc
    except InvalidCursor as exc:
        raise InvalidInput(
            f"invalid cursor: {exc}", details=[{"loc": ["query", "cursor"], "msg": str(exc)}]
        ) from exc
    return collection, result


def _response(
    collection: Collection,
    query: SearchQuery,
    result: SearchResult,
    started: float,
    context: SearchContext,
) -> dict[str, Any]:
    next_cursor = (
        encode_cursor(collection, query, result.hits[-1].sort_values)
        if result.has_more and result.hits
        else None
    )
    return {
        "hits": [_hit(h, context.pages.get(h.id)) for h in result.hits],
        "total": result.total,
        "total_relation": "eq" if result.total_exact else "gte",
        "ranking": "exact" if result.exact_order else "tiered",
        "facets": {
            name: [{"value": v, "count": n} for v, n in values]
            for name, values in result.facets.items()
        },
        "next_cursor": next_cursor,
        # Writes accepted but not yet searchable: an empty result right after a write
        # explains itself.
        "pending_tasks": context.pending_tasks,
        "took_ms": round((time.perf_counter() - started) * 1000, 2),
    }


def _hit(hit: Hit, pages: list[int] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": hit.id,
        "score": hit.score,
        "document": hit.document,
        "highlights": hit.highlights,
    }
    if pages:
        out["pages"] = pages
    return out


class SearchHit(BaseModel):
    id: str
    score: float | None
    document: dict[str, Any]
    highlights: dict[str, list[str]]
    pages: list[int] | None = Field(
        None, description="Documents uploaded as PDF files: the pages that hold query words."
    )


class FacetValue(BaseModel):
    value: Any
    count: int


class SearchResponse(BaseModel):
    hits: list[SearchHit]
    total: int
    total_relation: Literal["eq", "gte"]
    ranking: Literal["exact", "tiered"]
    facets: dict[str, list[FacetValue]]
    next_cursor: str | None
    pending_tasks: int = Field(
        description="The collection's tasks still enqueued or processing: their writes are"
        " not yet (all) searchable"
    )
    took_ms: float


# The routes return a SearchJSONResponse: the body is built from backend data we trust,
# and FastAPI's response validation would re-walk every document on a worker thread.
RESPONSES: dict[int | str, dict[str, Any]] = {200: {"model": SearchResponse}}


class SearchJSONResponse(JSONResponse):
    """JSON by pydantic-core's serializer, a sixth of the standard library's time (see
    bench/notes.md, 'Design decisions: JSON by pydantic-core'). JSON has no NaN or
    infinity: they would come out as null (the stored documents, being jsonb, cannot hold
    them)."""

    def render(self, content: Any) -> bytes:
        return pydantic_core.to_json(content, inf_nan_mode="null")


async def _search(
    name: str,
    engine: Engine,
    read_engine: Engine,
    backend: SearchBackend,
    principal: Principal,
    limiter: CapacityLimiter,
    query_for: Callable[[Collection], SearchQuery],
) -> JSONResponse:
    """One search, on a worker thread under the search limiter (see below)."""

    def search() -> JSONResponse:
        check_collection(principal, name)
        collection = collections.load_cached(engine, name)
        return SearchJSONResponse(
            _run(engine, read_engine, backend, collection, query_for(collection))
        )

    return await to_thread.run_sync(search, limiter=limiter)


# The routes are `async def` so that their work (a database round trip or more, and the
# response's JSON) runs on a worker thread under the search limiter: a plain `def` route
# would run on FastAPI's shared pool of 40 threads, and many concurrent searches all
# running at once on few cores make each one slower (the GIL and the CPUs shared many
# ways; see bench/notes.md, 'Design decisions: search limiter').
@router.get("", response_model=None, responses=RESPONSES)
async def search_get(
    name: str,
    engine: EngineDep,
    read_engine: ReadEngineDep,
    backend: BackendDep,
    principal: SearchKey,
    limiter: SearchLimiterDep,
    q: Annotated[str, Query(max_length=2000, description="Web-search syntax")] = "",
    filter: Annotated[
        list[str], Query(description="field:value, field:v1,v2, field>=v, field:lo..hi")
    ] = [],  # noqa: B006 - FastAPI copies defaults
    facets: Annotated[list[str], Query(description="Facet fields, comma separated")] = [],  # noqa: B006
    sort: Annotated[list[str], Query(description="field[:asc|:desc], _score, _id")] = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    cursor: str | None = None,
    highlight: bool = True,
    prefix: Annotated[bool, Query(description=PREFIX_HELP)] = True,
    typo: Annotated[bool, Query(description=TYPO_HELP)] = True,
) -> JSONResponse:
    def query_for(collection: Collection) -> SearchQuery:
        return build_query(
            collection,
            q=q,
            filters=parse_filter_strings(collection, filter),
            facets=_split(facets),
            sort=_split(sort),
            limit=limit,
            cursor=cursor,
            highlight=highlight,
            prefix=prefix,
            typo=typo,
        )

    return await _search(name, engine, read_engine, backend, principal, limiter, query_for)


@router.post("", response_model=None, responses=RESPONSES)
async def search_post(
    name: str,
    body: SearchBody,
    engine: EngineDep,
    read_engine: ReadEngineDep,
    backend: BackendDep,
    principal: SearchKey,
    limiter: SearchLimiterDep,
) -> JSONResponse:
    def query_for(collection: Collection) -> SearchQuery:
        return query_from_body(collection, body)

    return await _search(name, engine, read_engine, backend, principal, limiter, query_for)
