"""Changing documents without resending them whole: merge fields into stored documents
(one, or a batch), delete the documents a filter selects, and look up facet values."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from docuseek import collections, ingest
from docuseek import queries as Q
from docuseek.api.deps import (
    BackendDep,
    DocumentId,
    EngineDep,
    SearchKey,
    SettingsDep,
    WriteKey,
    check_collection,
)
from docuseek.api.routes.documents import BATCH_BODY, TaskAccepted, accepted, store_batch
from docuseek.api.routes.search import search_index
from docuseek.api.search_request import (
    MAX_LIMIT,
    build_query,
    encode_cursor,
    parse_filter_object,
    parse_filter_strings,
)
from docuseek.errors import InvalidInput
from docuseek.schema import FieldSpec
from docuseek.storable import StorableModel

router = APIRouter(prefix="/collections/{name}", tags=["documents"])


@router.patch("/documents/{doc_id}", status_code=status.HTTP_202_ACCEPTED)
def patch_document(
    name: str, doc_id: DocumentId, body: dict[str, Any], engine: EngineDep, principal: WriteKey
) -> TaskAccepted:
    """Merge the body's fields into the stored document (top-level fields are replaced; a
    field set to null is cleared). 404 when the document does not exist."""
    check_collection(principal, name)
    if "id" in body and body["id"] != doc_id:
        message = f"the body's id {body['id']!r} differs from the path's {doc_id!r}"
        raise InvalidInput(message, details=[{"loc": ["body", "id"], "msg": message}])
    patch = {**body, "id": doc_id}
    return accepted(ingest.merge_documents(engine, name, [patch], must_exist=True))


@router.patch("/documents", status_code=status.HTTP_202_ACCEPTED, openapi_extra=BATCH_BODY)
async def patch_documents(
    name: str, request: Request, engine: EngineDep, settings: SettingsDep, principal: WriteKey
) -> TaskAccepted:
    """A batch of partial documents (JSON array or NDJSON, each with its `id`), each merged
    into its stored document, or stored as it is when there is none. All or nothing."""
    check_collection(principal, name)
    return await store_batch(
        request, settings, lambda docs: ingest.merge_documents(engine, name, docs, must_exist=False)
    )


class DeleteByFilter(StorableModel):
    model_config = ConfigDict(extra="forbid")

    filter: dict[str, Any] | list[str] = Field(
        description="The search filter: the POST search form"
        ' ({"section": ["a"], "year": {"lt": 2000}}) or the query-string form'
        ' (["section:a", "year<2000"]). Required: use DELETE /collections/{name} for all.'
    )


@router.post("/documents/delete", status_code=status.HTTP_202_ACCEPTED)
def delete_by_filter(
    name: str, body: DeleteByFilter, engine: EngineDep, backend: BackendDep, principal: WriteKey
) -> TaskAccepted:
    """Delete the documents the filter matches, as searches see them now (documents written
    but not yet searchable are not matched), as one task."""
    check_collection(principal, name)
    collection = collections.load_cached(engine, name)
    if isinstance(body.filter, dict):
        filters = parse_filter_object(collection, body.filter)
    else:
        filters = parse_filter_strings(collection, body.filter)
    if not filters:
        message = "the filter is empty; to delete every document, delete the collection"
        raise InvalidInput(message, details=[{"loc": ["body", "filter"], "msg": message}])
    ids: list[str] = []
    cursor: str | None = None
    while True:
        query = build_query(
            collection,
            q="",
            filters=filters,
            facets=[],
            sort=["_id"],
            limit=MAX_LIMIT,
            cursor=cursor,
            highlight=False,
        )
        collection, page = search_index(engine, backend, collection, query)
        ids.extend(hit.id for hit in page.hits)
        if not (page.has_more and page.hits):
            break
        cursor = encode_cursor(collection, query, page.hits[-1].sort_values)
    return accepted(ingest.delete_documents(engine, name, sorted(ids)))


class FacetValueCount(BaseModel):
    value: Any
    count: int


class FacetValues(BaseModel):
    field: str
    values: list[FacetValueCount]


def _typed(spec: FieldSpec, text: str) -> Any:
    if spec.type == "integer":
        return int(text)
    if spec.type == "float":
        return float(text)
    if spec.type == "boolean":
        return text == "true"
    return text


@router.get("/facets/{field}")
def facet_values(
    name: str,
    field: str,
    engine: EngineDep,
    principal: SearchKey,
    q: Annotated[str, Query(max_length=200, description="Prefix (case-insensitive)")] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10,
) -> FacetValues:
    """The values of a facet field that start with `q`, most frequent first, with the
    number of documents holding each (over the stored documents, whatever the backend)."""
    check_collection(principal, name)
    with engine.connect() as conn:
        collection = collections.load(conn, name)
        spec = collection.fields.get(field)
        if spec is None or not spec.facet:
            facets = ", ".join(sorted(f for f, s in collection.fields.items() if s.facet))
            message = f"{field!r} is not a facet field; facet fields: {facets or 'none'}"
            raise InvalidInput(message, details=[{"loc": ["path", "field"], "msg": message}])
        rows = conn.execute(
            Q.FACET_VALUES, {"cid": collection.id, "field": field, "prefix": q, "limit": limit}
        ).all()
    return FacetValues(
        field=field, values=[FacetValueCount(value=_typed(spec, r.value), count=r.n) for r in rows]
    )
