"""ASGI middleware: request ids, security headers and the last-resort error handler;
request metrics by route template; the request body size limit; document ids that hold
`/`."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any
from urllib.parse import unquote

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docuseek.api.security_headers import SECURITY_HEADERS
from docuseek.db import database_unavailable, describe_failure
from docuseek.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = structlog.get_logger("docuseek.api")

REQUEST_ID_HEADER = b"x-request-id"
# A client's id is echoed into headers and logs: short, and nothing that could split either.
_SANE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:@/+=-]{1,128}$")
DATABASE_UNAVAILABLE_MESSAGE = "database unavailable; retry shortly"


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers") or []:
        if name == REQUEST_ID_HEADER and _SANE_REQUEST_ID.match(value):
            return bytes(value).decode("ascii")
    return uuid.uuid4().hex


def json_error(status: int, error: dict[str, Any]) -> tuple[list[tuple[bytes, bytes]], bytes]:
    payload = json.dumps({"error": error}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    return headers, payload


class RequestContextMiddleware:
    """The outermost layer: gives each request an id (the client's X-Request-ID when sane)
    that every log line of the request carries and the response echoes; adds the security
    headers to every response; and turns whatever escaped the routes into JSON (a 503 for
    a database that cannot be reached, else a 500) with one log line, never plain text."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        authenticated = any(name == b"authorization" for name, _ in scope.get("headers") or [])
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in _OWN_HEADERS
                    and not (authenticated and k.lower() == b"cache-control")
                ]
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                headers.extend(SECURITY_HEADERS)
                if authenticated:
                    # A response to a key holder may carry its collections' documents.
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_headers)
            except Exception as exc:
                if database_unavailable(exc):
                    log.warning(
                        "database unavailable",
                        path=scope.get("path"),
                        error=describe_failure(exc),
                    )
                    status = 503
                    error: dict[str, Any] = {
                        "code": "database_unavailable",
                        "message": DATABASE_UNAVAILABLE_MESSAGE,
                    }
                else:
                    log.exception("unhandled error", path=scope.get("path"))
                    status = 500
                    error = {"code": "internal", "message": "internal error"}
                error["request_id"] = request_id
                if started:
                    return  # too late for a response of our own; the log line says why
                headers, payload = json_error(status, error)
                if status == 503:
                    headers.append((b"retry-after", b"1"))
                await send_with_headers(
                    {"type": "http.response.start", "status": status, "headers": headers}
                )
                await send_with_headers({"type": "http.response.body", "body": payload})


_OWN_HEADERS = frozenset({REQUEST_ID_HEADER, *(name for name, _ in SECURITY_HEADERS)})


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            # The route template, not the raw path: bounded label cardinality.
            template = getattr(route, "path", None) or "<unmatched>"
            labels = (scope["method"], template, str(status["code"]))
            HTTP_REQUESTS.labels(*labels).inc()
            HTTP_LATENCY.labels(*labels).observe(time.perf_counter() - started)


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 before reading when Content-Length is too big; stop reading a chunked body past it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _send_413(send, self.max_bytes)
            return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await _send_413(send, self.max_bytes)


async def _send_413(send: Send, max_bytes: int) -> None:
    body: dict[str, Any] = {
        "error": {
            "code": "payload_too_large",
            "message": f"request body is larger than the limit of {max_bytes} bytes"
            " (DOCUSEEK_MAX_BODY_BYTES); split the batch",
        }
    }
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


# The path after a collection's `/documents/`, and the escapes kept in it.
_DOCUMENT_PATH = re.compile(rb"^(/collections/[^/]+/documents/)(.+)$")
_KEPT_ESCAPES = re.compile(rb"(%2[fF]|%25)")


class EncodedDocumentIdMiddleware:
    """A document id may hold `/` (the files importer's ids are paths under a folder),
    sent as `%2F`; the ASGI server decodes it in the path it routes, which then holds one
    segment more and matches no route. For the path after `/documents/`, this routes the
    path as received with `%2F` and `%25` still encoded, so the id stays one segment;
    `deps.document_id` decodes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        found = _DOCUMENT_PATH.match(raw) if raw else None
        if found and _KEPT_ESCAPES.search(found[2]):
            parts = _KEPT_ESCAPES.split(found[2])
            # split() with a group puts the escapes at the odd places
            tail = "".join(
                part.decode("ascii").upper() if i % 2 else unquote(part.decode("latin-1"))
                for i, part in enumerate(parts)
            )
            # In place: the metrics read the matched route from this scope.
            scope["path"] = unquote(found[1].decode("latin-1")) + tail
        await self.app(scope, receive, send)
