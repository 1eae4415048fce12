"""PostgreSQL: an index holds at most 32 columns, so the keyword columns past the shared
match index's room get a GIN index each, and those indexes follow the schema."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from docuseek import collections
from docuseek.search.postgres.layout import table_name
from tests.helpers import Service


def index_columns(service: Service, name: str) -> dict[str, int]:
    """The table's GIN indexes by name prefix (`match` or `kw`) → how many columns each
    kind covers in all."""
    collection = collections.load_cached(service.engine, name)
    schema, table = table_name(collection, collection.generation).split(".")
    with service.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, i.indnatts FROM pg_index i"
                " JOIN pg_class c ON c.oid = i.indexrelid"
                " JOIN pg_class t ON t.oid = i.indrelid"
                " JOIN pg_namespace n ON n.oid = t.relnamespace"
                " WHERE n.nspname = :s AND t.relname = :t"
            ),
            {"s": schema, "t": table},
        ).all()
    covered: dict[str, int] = {}
    for index_name, columns in rows:
        kind = index_name.removeprefix(f"{table}_").split("_")[0]
        covered[kind] = covered.get(kind, 0) + columns
    return covered


def test_keyword_columns_past_the_match_index_get_their_own(service: Service) -> None:
    fields: dict[str, Any] = {f"k{i:02}": {"type": "keyword"} for i in range(40)}
    service.create_collection("wide", {"title": {"type": "text"}, **fields}, index_phrases=True)
    covered = index_columns(service, "wide")
    # tsv, 30 keyword columns and pairs; the other 10 keyword columns alone.
    assert (covered["match"], covered["kw"]) == (32, 10)
    del fields["k39"], fields["k00"]
    service.create_collection("wide", {"title": {"type": "text"}, **fields}, index_phrases=True)
    assert (index_columns(service, "wide")["match"], index_columns(service, "wide")["kw"]) == (
        32,
        8,
    )
    few = {name: fields[name] for name in list(fields)[:5]}
    service.create_collection("wide", {"title": {"type": "text"}, **few}, index_phrases=True)
    covered = index_columns(service, "wide")
    assert covered["match"] == 7 and "kw" not in covered
