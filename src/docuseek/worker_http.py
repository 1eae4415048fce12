"""The worker's small HTTP server: /metrics (Prometheus) and /healthz."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app

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


def start_metrics_server(host: str, port: int) -> threading.Thread:
    server = make_server(host, port, _app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return thread
