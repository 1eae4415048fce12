"""The PostgreSQL vocabulary behind typo tolerance: kept by index writes, rebuilt by
reindex, filled by migration 0010 for tables that existed before it."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, text

from docuseek.migrate import alembic_config, upgrade
from docuseek.reindex import reindex
from docuseek.settings import Settings
from tests.helpers import Service

FIELDS = {"title": {"type": "text", "weight": "A"}, "body": {"type": "text"}}


def vocabulary(engine: Engine, generation: int = 1) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(text(f"SELECT lexeme FROM docuseek_index.c1_g{generation}_vocab"))
            .scalars()
            .all()
        )


def index_tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'docuseek_index'")
            ).scalars()
        )


def typo_hits(service: Service, q: str) -> list[str]:
    return [h["id"] for h in service.search("notes", q=q, prefix="false")["hits"]]


def test_index_writes_add_their_lexemes(service: Service, engine: Engine) -> None:
    service.create_collection("notes", FIELDS)
    service.add("notes", [{"id": "n1", "title": "Deployment strategy", "body": "Rollouts"}])
    service.drain()
    assert vocabulary(engine) == {"deploy", "strategi", "rollout"}
    service.add("notes", [{"id": "n2", "title": "Strategy games", "body": ""}])
    service.add("notes", [{"id": "n1", "title": "Deployment", "body": ""}])  # an update
    service.drain()
    # Words are added, never removed: `rollout` stays (it only costs a candidate).
    assert vocabulary(engine) == {"deploy", "strategi", "rollout", "game"}
    assert typo_hits(service, "stratgy") == ["n2"]


def test_reindex_fills_the_new_generation_and_drops_the_old(
    service: Service, engine: Engine
) -> None:
    service.create_collection("notes", FIELDS)
    service.add("notes", [{"id": "n1", "title": "Deployment strategy", "body": ""}])
    service.drain()
    reindex(service.engine, service.backend, "notes")
    assert vocabulary(engine, 2) == {"deploy", "strategi"}
    assert "c1_g1_vocab" not in index_tables(engine)
    assert typo_hits(service, "stratgy") == ["n1"]


def test_0010_fills_vocabularies_and_its_downgrade_drops_them(
    service: Service, settings: Settings, engine: Engine
) -> None:
    service.create_collection("notes", FIELDS)
    service.add("notes", [{"id": "n1", "title": "Deployment strategy", "body": ""}])
    service.drain()
    assert settings.database_url
    command.downgrade(alembic_config(settings.database_url), "0009")
    assert index_tables(engine) == {"c1_g1"}
    upgrade(settings.database_url)
    assert vocabulary(engine) == {"deploy", "strategi"}
    assert typo_hits(service, "stratgy") == ["n1"]
    with engine.connect() as conn:
        # Four tasks fit one page: only with scans made expensive does the plan show that
        # the index serves the count (on a large table it is the cheaper plan anyway).
        conn.execute(text("SET enable_seqscan = off"))
        plan = conn.execute(
            text(
                "EXPLAIN SELECT count(*) FROM tasks WHERE collection = 'notes'"
                " AND status IN ('enqueued', 'processing')"
            )
        ).scalars()
        assert "tasks_pending_idx" in "\n".join(plan)
