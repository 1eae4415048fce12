"""Migrations run both ways on a database that holds collections and index tables."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, text

from docuseek.migrate import alembic_config, upgrade
from docuseek.settings import Settings
from tests.conftest import Service

FIELDS = {"title": {"type": "text", "weight": "A"}, "body": {"type": "text"}}


def index_columns(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(
                text(
                    "SELECT attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = 'docuseek_index' AND c.relkind = 'r'"
                    " AND a.attnum > 0 AND NOT a.attisdropped"
                )
            ).scalars()
        )


def test_0003_drops_the_document_copy_and_its_downgrade_refills_it(
    service: Service, settings: Settings, engine: Engine
) -> None:
    service.create_collection("notes", FIELDS)
    service.add("notes", [{"id": "n1", "title": "lazy fox", "body": "jumps"}])
    service.drain()
    assert settings.database_url and "doc" not in index_columns(engine)

    command.downgrade(alembic_config(settings.database_url), "0002")
    assert "doc" in index_columns(engine)
    with engine.connect() as conn:  # what the older code reads its pages from
        docs = conn.execute(text("SELECT doc FROM docuseek_index.c1_g1")).scalars().all()
    assert docs == [{"id": "n1", "title": "lazy fox", "body": "jumps"}]

    upgrade(settings.database_url)
    assert "doc" not in index_columns(engine)
    hits = service.search("notes", q="fox")["hits"]
    assert [(h["id"], h["document"]["body"]) for h in hits] == [("n1", "jumps")]
