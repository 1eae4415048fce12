"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from docuseek.api.app import create_app
from docuseek.db import make_engine
from docuseek.search.postgres import PostgresBackend
from tests.helpers import BOOK_FIELDS, Service, free_port


def metric(body: str, name: str, **labels: str) -> float:
    selector = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = (
        rf"^{re.escape(name)}{{{re.escape(selector)}}} (\S+)$"
        if labels
        else rf"^{re.escape(name)} (\S+)$"
    )
    match = re.search(pattern, body, re.M)
    assert match, f"{name}{{{selector}}} not in metrics"
    return float(match.group(1))


def test_metrics_cover_requests_queue_and_indexing(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    service.add("books", [{"id": str(i), "title": "metrics"} for i in range(7)])
    body = service.client.get("/metrics").text
    assert metric(body, "docuseek_queue_depth") == 7
    assert metric(body, "docuseek_queue_oldest_age_seconds") >= 0
    posted = metric(
        body,
        "docuseek_http_requests_total",
        method="POST",
        route="/collections/{name}/documents",
        status="202",
    )
    assert posted >= 1
    service.drain()
    service.search("books", q="metrics")
    body = service.client.get("/metrics").text
    assert metric(body, "docuseek_queue_depth") == 0
    assert metric(body, "docuseek_documents_indexed_total", op="upsert") >= 7
    assert metric(body, "docuseek_index_batch_size_count") >= 1
    assert metric(body, "docuseek_index_batch_duration_seconds_count") >= 1
    latency = metric(
        body,
        "docuseek_http_request_duration_seconds_count",
        method="GET",
        route="/collections/{name}/search",
        status="200",
    )
    assert latency >= 1
    # Route templates, not raw paths: no label per collection or document.
    assert "/collections/books" not in body


def test_readyz_reports_an_unreachable_database(settings: object) -> None:
    dead = make_engine(f"postgresql://nobody@127.0.0.1:{free_port()}/none", pool_size=1)
    app = create_app(settings, dead, PostgresBackend(dead))  # type: ignore[arg-type]
    client = TestClient(app)
    response = client.get("/readyz")
    assert response.status_code == 503
    # Unauthenticated: nothing of the driver's text (host, port, socket path).
    assert response.json()["checks"]["database"] == "unavailable"
    assert "127.0.0.1" not in response.text and "nobody" not in response.text
    assert client.get("/healthz").status_code == 200


def test_openapi_documents_every_route(service: Service) -> None:
    assert service.client.get("/docs").status_code == 200
    paths = service.client.get("/openapi.json").json()["paths"]
    for path in (
        "/keys",
        "/collections/{name}",
        "/collections/{name}/documents",
        "/collections/{name}/documents/{doc_id}",
        "/collections/{name}/search",
        "/tasks/{task_id}",
        "/readyz",
    ):
        assert path in paths, path
    ndjson = paths["/collections/{name}/documents"]["post"]["requestBody"]["content"]
    assert "application/x-ndjson" in ndjson
