"""Liveness, readiness and Prometheus metrics (no authentication)."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from docuseek.api.deps import BackendDep, EngineDep
from docuseek.db import describe_failure
from docuseek.search.base import BackendUnavailable

log = structlog.get_logger("docuseek.api")

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(engine: EngineDep, backend: BackendDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        # Unauthenticated: the driver's text (host, socket path) goes to the log only.
        log.warning("readiness: database unavailable", error=describe_failure(exc))
        checks["database"] = "unavailable"
    try:
        backend.check()
        checks["search"] = "ok"
    except BackendUnavailable as exc:
        log.warning("readiness: search backend unavailable", error=str(exc))
        checks["search"] = "unavailable"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", response_class=Response)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
