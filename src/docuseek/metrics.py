"""Prometheus metrics shared by the api and the worker (one registry per process)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import Engine

from docuseek import queries as Q

HTTP_REQUESTS = Counter(
    "docuseek_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "docuseek_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "docuseek_index_batch_size",
    "Documents per indexing batch",
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000),
)
BATCH_DURATION = Histogram(
    "docuseek_index_batch_duration_seconds",
    "Time to apply one batch to the search backend and settle it",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DOCUMENTS_INDEXED = Counter("docuseek_documents_indexed_total", "Index operations applied", ["op"])
DOCUMENTS_FAILED = Counter(
    "docuseek_documents_failed_total", "Documents that failed indexing for good"
)
BATCH_ERRORS = Counter(
    "docuseek_index_batch_errors_total", "Batches that failed and were retried", ["reason"]
)


class QueueCollector(Collector):
    """Queue depth and the age of the oldest pending row, read at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("docuseek_queue_depth", "Documents waiting to be indexed")
        age = GaugeMetricFamily(
            "docuseek_queue_oldest_age_seconds", "Age of the oldest outbox row (0 when empty)"
        )
        up = GaugeMetricFamily("docuseek_database_up", "1 when the database answered the scrape")
        try:
            with self.engine.connect() as conn:
                count, oldest = conn.execute(Q.QUEUE_STATS).one()
            depth.add_metric([], float(count))
            age.add_metric([], float(oldest))
            up.add_metric([], 1.0)
            yield depth
            yield age
        except Exception:  # a scrape must not fail because the database is down
            up.add_metric([], 0.0)
        yield up


_collector: list[QueueCollector] = []


def register_queue_collector(engine: Engine) -> None:
    """One collector per process (the embedded server runs api and worker together); a later
    call points it at the newer engine."""
    if _collector:
        _collector[0].engine = engine
        return
    _collector.append(QueueCollector(engine))
    REGISTRY.register(_collector[0])
