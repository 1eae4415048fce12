"""The web console at `/` and Swagger UI at `/docs`, both from files in the package.

Neither page has inline script, so both work under a Content-Security-Policy of
`script-src 'self'`; Swagger UI's assets come from the fastapi-offline package, so /docs
needs no network.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from docuseek.console import STATIC_DIR

SWAGGER_DIR = Path(fastapi_offline.__file__).parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def console() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/docs")
async def docs() -> FileResponse:
    return FileResponse(STATIC_DIR / "docs.html", headers={"Cache-Control": "no-cache"})


def install(app: FastAPI) -> None:
    """Register the two pages and their static files."""
    app.include_router(router)
    app.mount("/console", StaticFiles(directory=STATIC_DIR), name="console")
    app.mount("/docs-assets", StaticFiles(directory=SWAGGER_DIR), name="docs-assets")
