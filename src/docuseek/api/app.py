"""The FastAPI application factory."""

from __future__ import annotations

from typing import Any

import psycopg
import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from docuseek import __version__
from docuseek.api.deps import check_params_storable
from docuseek.api.middleware import (
    DATABASE_UNAVAILABLE_MESSAGE,
    BodyLimitMiddleware,
    EncodedDocumentIdMiddleware,
    MetricsMiddleware,
    RequestContextMiddleware,
)
from docuseek.api.openapi import install_openapi
from docuseek.api.routes import (
    collections,
    console,
    documents,
    files,
    health,
    keys,
    multi_search,
    partial,
    reindex,
    search,
    tasks,
)
from docuseek.db import database_unavailable, describe_failure, make_engine, make_read_engine
from docuseek.errors import DocuseekError
from docuseek.metrics import register_queue_collector
from docuseek.search.base import SearchBackend
from docuseek.search.factory import make_backend
from docuseek.settings import Settings, get_settings

log = structlog.get_logger("docuseek.api")


def _error(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if details is not None:
        body["error"]["details"] = details
    return JSONResponse(body, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DocuseekError)
    async def docuseek_error(_: Request, exc: DocuseekError) -> JSONResponse:
        return _error(exc.status_code, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        status = 400 if first.get("type") == "json_invalid" else 422
        code = "malformed_body" if status == 400 else "invalid_input"
        return _error(status, code, f"{where}: {first['msg']}", details)

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            raise exc  # a bug: the catch-all (RequestContextMiddleware) answers with a 500
        log.warning("database unavailable", path=request.url.path, error=describe_failure(exc))
        response = _error(503, "database_unavailable", DATABASE_UNAVAILABLE_MESSAGE)
        response.headers["retry-after"] = "1"
        return response

    for exc_class in (
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        sa_exc.TimeoutError,
        sa_exc.DisconnectionError,
        sa_exc.DBAPIError,
        psycopg.OperationalError,
        psycopg.InterfaceError,
    ):
        app.add_exception_handler(exc_class, database_error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {
            404: "not_found",
            405: "method_not_allowed",
            401: "unauthorized",
            429: "too_many_requests",
        }
        response = _error(
            exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail)
        )
        if exc.headers:
            response.headers.update(exc.headers)
        return response


def create_app(
    settings: Settings | None = None,
    engine: Engine | None = None,
    backend: SearchBackend | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    if engine is None:
        if not settings.database_url:
            raise RuntimeError("DATABASE_URL is not set (use `docuseek serve` for embedded mode)")
        engine = make_engine(settings.database_url, application_name="docuseek-api")
    read_engine = make_read_engine(engine)  # connects on first use
    backend = backend or make_backend(settings, engine, read_engine)
    register_queue_collector(engine)

    app = FastAPI(
        title="Docuseek",
        version=__version__,
        description="Self-hosted document search. Authenticate with `Authorization: Bearer <key>`.",
        dependencies=[Depends(check_params_storable)],
        docs_url=None,  # served offline by routes/console.py
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.backend = backend
    app.state.read_engine = read_engine
    install_error_handlers(app)
    for module in (
        search,  # first: routes are matched in order, and searches are the most frequent
        health,
        keys,
        collections,
        documents,
        files,
        partial,
        tasks,
        reindex,
        multi_search,
    ):
        app.include_router(module.router)
    console.install(app)
    install_openapi(app)
    app.add_middleware(EncodedDocumentIdMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestContextMiddleware)  # request ids, security headers, catch-all
    if settings.cors_origin_list():
        # Outermost, so that errors (401, 413) carry the headers a browser needs to read them.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list(),
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Retry-After"],
            max_age=600,
        )
    return app
