"""Collections: schema management."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from docuseek import collections, reindex
from docuseek.api.deps import AdminKey, AnyKey, BackendDep, EngineDep, check_collection
from docuseek.schema import CollectionSchema
from docuseek.search.query import SearchSettings

router = APIRouter(prefix="/collections", tags=["collections"])


@router.put("/{name}")
def put_collection(
    name: str,
    body: CollectionSchema,
    response: Response,
    engine: EngineDep,
    backend: BackendDep,
    _: AdminKey,
) -> dict[str, Any]:
    collection, created = collections.put(engine, backend, name, body)
    if collections.needs_rebuild(collection):
        reindex.rebuild_in_background(engine, backend, name)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    with engine.connect() as conn:
        return collections.describe(conn, collection)


@router.get("")
def list_collections(engine: EngineDep, principal: AnyKey) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            collections.describe(conn, c)
            for c in collections.list_all(conn)
            if principal.allows_collection(c.name)
        ]


@router.get("/{name}")
def get_collection(name: str, engine: EngineDep, principal: AnyKey) -> dict[str, Any]:
    check_collection(principal, name)
    with engine.connect() as conn:
        return collections.describe(conn, collections.load(conn, name))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_collection(name: str, engine: EngineDep, backend: BackendDep, _: AdminKey) -> None:
    collections.delete(engine, backend, name)


@router.get("/{name}/settings")
def get_settings(name: str, engine: EngineDep, principal: AnyKey) -> SearchSettings:
    check_collection(principal, name)
    with engine.connect() as conn:
        return collections.load(conn, name).search_settings


@router.put("/{name}/settings")
def put_settings(name: str, body: SearchSettings, engine: EngineDep, _: AdminKey) -> SearchSettings:
    """Synonyms, stop words and typo tolerance: they apply to the next query (within 2
    seconds in other API processes), with no reindex."""
    collections.check_name(name)
    return collections.put_settings(engine, name, body).search_settings
