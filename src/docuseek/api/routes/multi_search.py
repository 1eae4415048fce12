"""Several searches in one request, possibly on different collections: each is checked
against the key on its own and fails on its own."""

from __future__ import annotations

from typing import Any

import anyio
from anyio import to_thread
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from docuseek import collections
from docuseek.api.deps import (
    BackendDep,
    EngineDep,
    ReadEngineDep,
    SearchKey,
    SearchLimiterDep,
    check_collection,
)
from docuseek.api.routes.search import SearchJSONResponse, SearchResponse, _run
from docuseek.api.search_request import SearchBody, query_from_body
from docuseek.errors import DocuseekError
from docuseek.storable import StorableModel

MAX_QUERIES = 20

router = APIRouter(tags=["search"])


class MultiSearchQuery(SearchBody):
    collection: str = Field(min_length=1, description="The collection this query searches")


class MultiSearchBody(StorableModel):
    model_config = ConfigDict(extra="forbid")

    queries: list[MultiSearchQuery] = Field(min_length=1, max_length=MAX_QUERIES)


class QueryError(BaseModel):
    code: str
    message: str
    details: Any = None


class MultiSearchFailure(BaseModel):
    status: int = Field(description="The status this query alone would have got")
    error: QueryError


class MultiSearchResponse(BaseModel):
    results: list[SearchResponse | MultiSearchFailure] = Field(
        description="One per query, in order: a search response, or an error"
    )


@router.post("/multi-search", response_model=None, responses={200: {"model": MultiSearchResponse}})
async def multi_search(
    body: MultiSearchBody,
    engine: EngineDep,
    read_engine: ReadEngineDep,
    backend: BackendDep,
    principal: SearchKey,
    limiter: SearchLimiterDep,
) -> JSONResponse:
    """Run the queries concurrently (each takes its turn under the search limit); a query
    on a collection the key may not use, or with a bad filter, gets its own error."""
    results: list[dict[str, Any] | None] = [None] * len(body.queries)

    def one(query: MultiSearchQuery) -> dict[str, Any]:
        try:
            check_collection(principal, query.collection)
            collection = collections.load_cached(engine, query.collection)
            search = query_from_body(collection, query)
            return _run(engine, read_engine, backend, collection, search)
        except DocuseekError as exc:
            error = {"code": exc.code, "message": exc.message, "details": exc.details}
            return {"status": exc.status_code, "error": error}

    async def run(position: int, query: MultiSearchQuery) -> None:
        results[position] = await to_thread.run_sync(one, query, limiter=limiter)

    async with anyio.create_task_group() as group:
        for position, query in enumerate(body.queries):
            group.start_soon(run, position, query)
    return SearchJSONResponse({"results": results})
