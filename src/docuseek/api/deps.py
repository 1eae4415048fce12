"""Request dependencies: settings, engine, backend and the authenticated principal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import unquote

import anyio
from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from docuseek.api.ratelimit import FailureLimiter
from docuseek.auth import ENV_ADMIN, Principal, Scope, authenticate, is_env_admin
from docuseek.errors import Forbidden, InvalidInput, Unauthorized
from docuseek.search.base import SearchBackend
from docuseek.settings import Settings
from docuseek.storable import text_problem


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_read_engine(request: Request) -> Engine:
    """The autocommit pool for read-only statements (`docuseek.db.make_read_engine`)."""
    engine: Engine = request.app.state.read_engine
    return engine


async def get_backend(request: Request) -> SearchBackend:
    backend: SearchBackend = request.app.state.backend
    return backend


async def get_search_limiter(request: Request) -> anyio.CapacityLimiter:
    """Searches run on worker threads, at most `search_concurrency` at once (FIFO)."""
    state = request.app.state
    limiter: anyio.CapacityLimiter | None = getattr(state, "search_limiter", None)
    if limiter is None:  # made here because anyio makes one only inside an event loop
        limiter = anyio.CapacityLimiter(state.settings.effective_search_concurrency())
        state.search_limiter = limiter
    return limiter


async def check_params_storable(request: Request) -> None:
    """Every route's path and query parameters: refuse a string PostgreSQL cannot hold
    (storable.py) before it reaches a statement."""
    for where, params in (
        ("path", request.path_params.items()),
        ("query", request.query_params.multi_items()),
    ):
        for name, value in params:
            problem = text_problem(value) if isinstance(value, str) else None
            if problem:
                message = f"{where} parameter {name!r} {problem}"
                raise InvalidInput(message, details=[{"loc": [where, name], "msg": message}])


SettingsDep = Annotated[Settings, Depends(get_settings)]
SearchLimiterDep = Annotated[anyio.CapacityLimiter, Depends(get_search_limiter)]
EngineDep = Annotated[Engine, Depends(get_engine)]
ReadEngineDep = Annotated[Engine, Depends(get_read_engine)]
BackendDep = Annotated[SearchBackend, Depends(get_backend)]

bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <api key>")


# The dependencies are `async def` although they do no awaiting: FastAPI runs a plain
# `def` dependency on a worker thread, a hop per dependency per request; only the key
# lookup, which does I/O, goes to a thread.
async def get_principal(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    try:
        if credentials is None or not credentials.credentials:
            raise Unauthorized("missing API key: send Authorization: Bearer <key>")
        env_key = settings.admin_key.get_secret_value() if settings.admin_key else None
        if is_env_admin(credentials.credentials, env_key):
            return ENV_ADMIN  # no database round trip
        principal = await run_in_threadpool(_lookup_key, engine, credentials.credentials)
        if principal is None:
            raise Unauthorized("invalid API key")
        return principal
    except Unauthorized:
        _count_failure(request, settings)
        raise


def _count_failure(request: Request, settings: Settings) -> None:
    """A failed authentication spends from its address's bucket; an empty bucket turns the
    401 into a 429. Only failures are counted, so a valid key is never held up."""
    state = request.app.state
    limiter: FailureLimiter | None = getattr(state, "auth_limiter", None)
    if limiter is None:
        limiter = state.auth_limiter = FailureLimiter(settings.auth_failures_per_minute)
    address = request.client.host if request.client else "unknown"
    wait = limiter.retry_after(address)
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many failed authentications from {address}; retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    limiter.failed(address)


def _lookup_key(engine: Engine, presented: str) -> Principal | None:
    with engine.connect() as conn:
        return authenticate(conn, presented)


def require(scope: Scope) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.allows_scope(scope):
            raise Forbidden(f"this key lacks the {scope!r} scope")
        return principal

    return check


def check_collection(principal: Principal, name: str) -> None:
    if not principal.allows_collection(name):
        raise Forbidden(f"this key may not use collection {name!r}")


SearchKey = Annotated[Principal, Depends(require("search"))]
WriteKey = Annotated[Principal, Depends(require("write"))]
AdminKey = Annotated[Principal, Depends(require("admin"))]
AnyKey = Annotated[Principal, Depends(get_principal)]


def document_id(
    doc_id: Annotated[
        str,
        Path(
            description="The document's id, percent-encoded: `/` as `%2F` and `%` as `%25`"
            " (`guides/install.pdf` is `guides%2Finstall.pdf`)."
        ),
    ],
) -> str:
    # EncodedDocumentIdMiddleware routed the path with `%2F` and `%25` still encoded.
    return unquote(doc_id)


DocumentId = Annotated[str, Depends(document_id)]
