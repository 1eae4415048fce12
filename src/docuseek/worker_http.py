"""The worker's small HTTP server: /metrics (Prometheus) and /healthz."""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import structlog
from prometheus_client import make_wsgi_app

log = structlog.get_logger("docuseek.worker")

_metrics_app = make_wsgi_app()


def _app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/healthz":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"status":"ok"}']
    if environ.get("PATH_INFO") == "/metrics":
        result: Iterable[bytes] = _metrics_app(environ, start_response)
        return result
    start_response("404 Not Found", [("Content-Type", "application/json")])
    return [b'{"error":{"code":"not_found","message":"try /metrics or /healthz"}}']


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return None


# Several workers on one host with the same settings: each takes the next free port.
PORT_ATTEMPTS = 10


def start_metrics_server(host: str, port: int) -> int | None:
    """Serve /metrics and /healthz on `port`, or the first free one of the next few; the
    port served, or None (logged) when all are taken: the worker works on without."""
    for candidate in range(port, port + PORT_ATTEMPTS):
        try:
            server = make_server(host, candidate, _app, handler_class=_QuietHandler)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                log.warning("metrics server not started", host=host, port=candidate, error=str(exc))
                return None
            continue
        thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
        thread.start()
        log.info("metrics server started", host=host, port=candidate)
        return candidate
    log.warning(
        "metrics server not started: every port taken",
        host=host,
        ports=f"{port}-{port + PORT_ATTEMPTS - 1}",
    )
    return None
