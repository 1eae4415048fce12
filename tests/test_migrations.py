"""Migrations run both ways on a database that holds collections and index tables."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, text

from docuseek.migrate import alembic_config, upgrade
from docuseek.settings import Settings
from tests.helpers import Service

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


KEYWORD_FIELDS = {
    "title": {"type": "text", "weight": "A"},
    "body": {"type": "text"},
    "section": {"type": "keyword", "facet": True},
    "Tag": {"type": "keyword"},
    "year": {"type": "integer"},
}


def table_indexes(engine: Engine) -> dict[str, str]:
    """Index name → its columns, for the index table of collection 1, generation 1."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
                " JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE i.indrelid = 'docuseek_index.c1_g1'::regclass"
            )
        ).all()
    return {name: definition.split(" USING ", 1)[1] for name, definition in rows}


def test_0004_moves_tsv_and_keywords_into_one_gin_index_and_back(
    service: Service, settings: Settings, engine: Engine
) -> None:
    # Without pairs, as every collection was before migration 0005.
    service.create_collection("notes", KEYWORD_FIELDS, index_phrases=False)
    doc = {"id": "n1", "title": "lazy fox", "body": "jumps", "section": "a", "Tag": "x"}
    service.add("notes", [doc, {**doc, "id": "n2", "section": "b"}])
    service.drain()
    assert settings.database_url
    created = table_indexes(engine)  # what ensure_collection builds for a new collection

    command.downgrade(alembic_config(settings.database_url), "0003")
    before = table_indexes(engine)
    assert before["c1_g1_tsv"] == "gin (tsv)"
    assert before["c1_g1_f_section"] == "gin (f_section)"
    assert before["c1_g1_f_Tag"] == 'gin ("f_Tag")'
    assert not [name for name in before if "_match_" in name]

    upgrade(settings.database_url)
    after = table_indexes(engine)
    assert after == created  # the migration and the layout agree on name and columns
    [match] = [name for name in after if "_match_" in name]
    assert after[match] == 'gin (tsv, "f_Tag", f_section)'
    assert "c1_g1_tsv" not in after and "c1_g1_f_section" not in after
    assert after["c1_g1_f_year"] == "btree (f_year)"
    hits = service.search("notes", q="fox", filter="section:b")["hits"]
    assert [h["id"] for h in hits] == ["n2"]


def test_a_new_keyword_field_replaces_the_match_index(service: Service, engine: Engine) -> None:
    service.create_collection("notes", KEYWORD_FIELDS)
    [old] = [name for name in table_indexes(engine) if "_match_" in name]
    service.create_collection("notes", {**KEYWORD_FIELDS, "lang": {"type": "keyword"}})
    indexes = table_indexes(engine)
    [new] = [name for name in indexes if "_match_" in name]
    assert new != old
    assert indexes[new] == 'gin (tsv, "f_Tag", f_lang, f_section, pairs)'


def test_0005_phrase_pairs_go_with_their_downgrade_and_the_match_index_stays(
    service: Service, settings: Settings, engine: Engine
) -> None:
    body = {"fields": KEYWORD_FIELDS, "index_phrases": True}
    assert service.client.put("/collections/notes", json=body).status_code == 201
    service.add("notes", [{"id": "n1", "title": "lazy fox", "body": "jumps", "section": "a"}])
    service.drain()
    assert settings.database_url and "pairs" in index_columns(engine)
    [match] = [name for name in table_indexes(engine) if "_match_" in name]
    assert table_indexes(engine)[match] == 'gin (tsv, "f_Tag", f_section, pairs)'

    command.downgrade(alembic_config(settings.database_url), "0004")
    assert "pairs" not in index_columns(engine)
    [match] = [name for name in table_indexes(engine) if "_match_" in name]
    assert table_indexes(engine)[match] == 'gin (tsv, "f_Tag", f_section)'

    upgrade(settings.database_url)
    # The table has no pairs now, and the collection says so: it searches as any other.
    assert service.client.get("/collections/notes").json()["index_phrases"] is False
    hits = service.search("notes", q='"lazy fox"', filter="section:a")["hits"]
    assert [h["id"] for h in hits] == ["n1"]


def test_0006_queues_chunks_and_its_downgrade_expands_them_per_document(
    service: Service, settings: Settings, engine: Engine
) -> None:
    service.create_collection("notes", FIELDS)
    task_id = service.add("notes", [{"id": f"n{i}", "title": f"fox {i}"} for i in range(150)])
    assert settings.database_url

    command.downgrade(alembic_config(settings.database_url), "0005")
    with engine.connect() as conn:  # the older code's queue: one row per document
        rows = conn.execute(text("SELECT doc_id, task_id FROM outbox ORDER BY doc_id")).all()
    assert len(rows) == 150 and rows[0] == ("n0", task_id)

    upgrade(settings.database_url)
    with engine.connect() as conn:
        sizes = conn.execute(text("SELECT cardinality(doc_ids) FROM outbox")).scalars().all()
    assert sizes == [1] * 150
    service.drain()
    assert service.task(task_id)["status"] == "succeeded"
    assert service.search("notes", q="fox")["total"] == 150


def test_0011_computes_impact_tokens_for_existing_rows_and_its_downgrade_drops_them(
    service: Service, settings: Settings, engine: Engine
) -> None:
    service.create_collection("notes", FIELDS)
    docs = [
        {"id": "n1", "title": "lazy fox", "body": "the fox jumps"},
        {"id": "n2", "title": "lazy dog", "body": "sleeps"},
    ]
    service.add("notes", docs)
    service.drain()
    assert settings.database_url and "impacts" in index_columns(engine)

    command.downgrade(alembic_config(settings.database_url), "0010")
    assert "impacts" not in index_columns(engine)
    assert "c1_g1_impacts" not in table_indexes(engine)

    upgrade(settings.database_url)
    assert table_indexes(engine)["c1_g1_impacts"] == "gin (impacts)"
    with engine.connect() as conn:
        tokens = dict(
            conn.execute(text("SELECT id, impacts FROM docuseek_index.c1_g1")).tuples().all()
        )
    # `fox` twice: the body (C, first in the vector: fields go by name) and the title (A).
    # ts_rank counts the best occurrence whole and the others by weight over their rank
    # squared: 0.2 / 1 of A's weight on top, level 6 of IMPACT_LEVELS. Words held once
    # get no token.
    assert tokens == {"n1": ["fox A6"], "n2": None}
