"""Settings from the environment (pydantic-settings). Every field documents its default.

`docuseek settings` prints this table; the README's settings section is generated from it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    database_url: str | None = Field(
        None,
        validation_alias="DATABASE_URL",
        description="PostgreSQL URL. Unset: `docuseek serve` starts an embedded PostgreSQL.",
    )
    data_dir: Path = Field(
        Path("./var/docuseek"),
        validation_alias="DOCUSEEK_DATA_DIR",
        description="Embedded mode: where the embedded PostgreSQL and the admin key live.",
    )
    admin_key: SecretStr | None = Field(
        None,
        validation_alias="DOCUSEEK_ADMIN_KEY",
        description="Admin bearer key. Embedded mode generates one on first start if unset.",
    )
    host: str = Field("127.0.0.1", validation_alias="DOCUSEEK_HOST", description="API bind host.")
    port: int = Field(8000, validation_alias="DOCUSEEK_PORT", description="API bind port.")
    log_level: str = Field("info", validation_alias="DOCUSEEK_LOG_LEVEL", description="Log level.")
    log_json: bool = Field(
        False, validation_alias="DOCUSEEK_LOG_JSON", description="Log as JSON lines."
    )
    max_body_bytes: int = Field(
        50 * 1024 * 1024,
        validation_alias="DOCUSEEK_MAX_BODY_BYTES",
        description="Largest accepted request body; larger ones get 413.",
    )
    search_concurrency: int | None = Field(
        None,
        ge=1,
        validation_alias="DOCUSEEK_SEARCH_CONCURRENCY",
        description="Searches one api process runs at once; more wait their turn, in order."
        " Unset: the CPUs the process may use, plus one. Searches compete for the CPUs with"
        " each other (and with PostgreSQL when it runs on them): letting a few run and the"
        " rest queue keeps the slowest searches fast, at some cost in throughput. Raise it"
        " when the search engine runs on other machines.",
    )
    cors_origins: str | None = Field(
        None,
        validation_alias="DOCUSEEK_CORS_ORIGINS",
        description="Origins (comma separated, e.g. `https://app.example.com`) whose web pages"
        " may call the API from a browser; `*` for any. Unset: none (no CORS headers).",
    )
    auth_failures_per_minute: int = Field(
        30,
        ge=1,
        validation_alias="DOCUSEEK_AUTH_FAILURES_PER_MINUTE",
        description="Failed authentications (missing, unknown or expired key) a client address"
        " may make per minute, in bursts of as many; more get 429 with Retry-After. Valid keys"
        " are never limited. Behind a reverse proxy, set uvicorn's FORWARDED_ALLOW_IPS to"
        " its address so the client's address is the one counted.",
    )
    max_batch_documents: int = Field(
        100_000,
        validation_alias="DOCUSEEK_MAX_BATCH_DOCUMENTS",
        description="Most documents accepted in one write request.",
    )
    max_file_bytes: int = Field(
        50 * 1024 * 1024,
        ge=1,
        validation_alias="DOCUSEEK_MAX_FILE_BYTES",
        description="Largest file accepted by POST /collections/{name}/files: a larger one gets"
        " 413 as soon as its bytes so far (or its part's Content-Length) pass it, before the"
        " rest is read. The whole request is also bounded by DOCUSEEK_MAX_BODY_BYTES, checked"
        " against its Content-Length before anything is read.",
    )
    extract_cpu_seconds: int = Field(
        60,
        ge=1,
        validation_alias="DOCUSEEK_EXTRACT_CPU_SECONDS",
        description="CPU seconds the worker's extraction child may use on one file.",
    )
    extract_timeout_seconds: float = Field(
        120.0,
        gt=0,
        validation_alias="DOCUSEEK_EXTRACT_TIMEOUT_SECONDS",
        description="Wall-clock seconds one file's extraction may take before it is killed.",
    )
    extract_memory_bytes: int = Field(
        1024 * 1024 * 1024,
        ge=64 * 1024 * 1024,
        validation_alias="DOCUSEEK_EXTRACT_MEMORY_BYTES",
        description="Address space the extraction child may map (RLIMIT_AS).",
    )
    extract_max_output_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        validation_alias="DOCUSEEK_EXTRACT_MAX_OUTPUT_BYTES",
        description="Largest extracted text (JSON) of one file, and largest temporary file the"
        " extraction child may write under TMPDIR.",
    )
    search_backend: Literal["postgres", "opensearch"] = Field(
        "postgres",
        validation_alias="SEARCH_BACKEND",
        description="Search index: PostgreSQL full-text search or OpenSearch.",
    )
    pg_exact_limit: int = Field(
        1000,
        ge=1,
        validation_alias="PG_EXACT_LIMIT",
        description="PostgreSQL backend: up to this many matches are ranked exactly and counted;"
        " beyond, the matches whose words weigh most in them (at most this many) are ranked"
        " first, then top-weight field matches, and the total is a lower bound.",
    )
    opensearch_url: str = Field(
        "http://127.0.0.1:9200", validation_alias="OPENSEARCH_URL", description="OpenSearch URL."
    )
    opensearch_user: str | None = Field(
        None, validation_alias="OPENSEARCH_USER", description="OpenSearch basic-auth user."
    )
    opensearch_password: SecretStr | None = Field(
        None, validation_alias="OPENSEARCH_PASSWORD", description="OpenSearch basic-auth password."
    )
    opensearch_verify_certs: bool = Field(
        True,
        validation_alias="OPENSEARCH_VERIFY_CERTS",
        description="Verify the cluster's TLS certificate (turn off only for local tests).",
    )
    opensearch_ca_file: Path | None = Field(
        None, validation_alias="OPENSEARCH_CA_FILE", description="CA bundle to verify OpenSearch."
    )
    opensearch_index_prefix: str = Field(
        "docuseek",
        validation_alias="OPENSEARCH_INDEX_PREFIX",
        description="Physical indices are named <prefix>-<collection>-<generation>.",
    )
    worker_batch_size: int = Field(
        1000,
        validation_alias="WORKER_BATCH_SIZE",
        description="Documents claimed per batch (whole outbox chunks of up to 100, at least one).",
    )
    worker_concurrency: int = Field(
        2,
        ge=1,
        le=32,
        validation_alias="WORKER_CONCURRENCY",
        description="Batches a worker process applies at once (threads).",
    )
    worker_poll_interval: float = Field(
        0.2,
        validation_alias="WORKER_POLL_INTERVAL",
        description="Seconds the worker sleeps when the queue is empty.",
    )
    worker_max_attempts: int = Field(
        8,
        validation_alias="WORKER_MAX_ATTEMPTS",
        description=(
            "Attempts at an outbox chunk before its documents count as failed in their task."
        ),
    )
    worker_backoff_base: float = Field(
        0.5,
        validation_alias="WORKER_BACKOFF_BASE",
        description="First retry delay in seconds; doubles per attempt (capped at 60 s).",
    )
    worker_metrics_port: int = Field(
        9100,
        validation_alias="WORKER_METRICS_PORT",
        description="Port of the worker's /metrics and /healthz (0: off). When it is taken"
        " (another worker on the host), the next free one of the following 9; the worker"
        " logs the port it serves on, and runs on without the server when all are taken.",
    )
    worker_metrics_host: str = Field(
        "127.0.0.1",
        validation_alias="WORKER_METRICS_HOST",
        description="Bind host of the worker's metrics server (unauthenticated): loopback by"
        " default; set 0.0.0.0 in a container, for Prometheus to scrape it.",
    )

    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in (self.cors_origins or "").split(",") if o.strip()]

    def effective_search_concurrency(self) -> int:
        return self.search_concurrency or len(os.sched_getaffinity(0)) + 1


@lru_cache
def get_settings() -> Settings:
    return Settings()
