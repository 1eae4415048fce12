"""Embedded peers a user might pick instead: SQLite FTS5 and Tantivy.

Same documents, same queries, same result shape (ten hits with highlights of both
text fields, the exact total, facets when asked). Both run in-process, driven
from Python threads, as an application embedding them would.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.corpus import COLUMNS
from bench.parallel import ingest_result
from bench.servers import dir_size

TERM = re.compile(r'"([^"]*)"|(\S+)')


def parse_websearch(q: str) -> list[list[str]]:
    """Websearch-style query -> list of conjuncts, each a list of words (phrase if > 1)."""
    out = []
    for phrase, word in TERM.findall(q):
        toks = re.findall(r"\w+", phrase if phrase else word)
        if toks:
            out.append(toks)
    return out


class SqliteFts:
    name = "sqlite_fts5"

    def __init__(self, path: Path) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        c = sqlite3.connect(path)
        c.executescript("""
            PRAGMA journal_mode=WAL;
            CREATE TABLE docs (rowid INTEGER PRIMARY KEY, id TEXT UNIQUE, package TEXT,
                section TEXT, priority TEXT, maintainer TEXT, installed_size INTEGER,
                description TEXT, long_description TEXT);
            CREATE VIRTUAL TABLE fts USING fts5(description, long_description,
                content='docs', content_rowid='rowid', tokenize='porter unicode61');
        """)
        c.close()

    def conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._local.conn = sqlite3.connect(self.path, check_same_thread=False)
            c.execute("PRAGMA journal_mode=WAL")
        return c

    def ingest(self, docs: Sequence[dict[str, Any]], batch: int = 1000) -> dict[str, Any]:
        c = self.conn()
        t0 = time.perf_counter()
        base = c.execute("SELECT coalesce(max(rowid), 0) FROM docs").fetchone()[0]
        for i in range(0, len(docs), batch):
            rows = [
                (base + i + j + 1, *[d.get(k) for k in COLUMNS])
                for j, d in enumerate(docs[i : i + batch])
            ]
            with c:
                c.executemany(
                    f"INSERT INTO docs (rowid, {', '.join(COLUMNS)}) VALUES "
                    f"(?, {', '.join('?' * len(COLUMNS))})",
                    rows,
                )
                c.executemany(
                    "INSERT INTO fts (rowid, description, long_description) VALUES (?, ?, ?)",
                    [(r[0], r[7], r[8]) for r in rows],
                )
        dt = time.perf_counter() - t0
        return ingest_result(len(docs), batch, 1, dt)

    @staticmethod
    def match_expr(q: str) -> str:
        return " AND ".join('"' + " ".join(t) + '"' for t in parse_websearch(q))

    def search(self, query: dict[str, Any], limit: int = 10) -> dict[str, Any]:
        c = self.conn()
        match = self.match_expr(query["q"])
        where, params = "fts MATCH ?", [match]
        for field, value in sorted((query.get("filter") or {}).items()):
            if isinstance(value, dict):
                for op, sym in (("gte", ">="), ("gt", ">"), ("lte", "<="), ("lt", "<")):
                    if op in value:
                        where += f" AND d.{field} {sym} ?"
                        params.append(value[op])
            else:
                where += f" AND d.{field} = ?"
                params.append(value)
        rows = c.execute(
            "SELECT d.id, bm25(fts, 10.0, 1.0) AS score,"
            " highlight(fts, 0, '<mark>', '</mark>'),"
            " snippet(fts, 1, '<mark>', '</mark>', '...', 25)"
            f" FROM fts JOIN docs d ON d.rowid = fts.rowid WHERE {where}"
            " ORDER BY score, d.id LIMIT ?",
            [*params, limit],
        ).fetchall()
        match_from = f"FROM fts JOIN docs d ON d.rowid = fts.rowid WHERE {where}"
        total = c.execute(f"SELECT count(*) {match_from}", params).fetchone()[0]
        facets = {}
        for name in query.get("facets") or []:
            facets[name] = [
                {"value": v, "count": n}
                for v, n in c.execute(
                    f"SELECT d.{name}, count(*) {match_from} GROUP BY d.{name}"
                    " ORDER BY count(*) DESC LIMIT 20",
                    params,
                )
            ]
        return {"ids": [r[0] for r in rows], "total": int(total), "facets": facets}

    def size_bytes(self) -> int:
        c = self.conn()
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(
            Path(str(self.path) + s).stat().st_size
            for s in ("", "-wal")
            if Path(str(self.path) + s).exists()
        )

    def close(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()


class TantivyIndex:
    name = "tantivy"

    def __init__(self, path: Path) -> None:
        import tantivy

        self.t = tantivy
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        self.path = path
        sb = tantivy.SchemaBuilder()
        sb.add_text_field("id", stored=True, tokenizer_name="raw")
        sb.add_text_field("description", stored=True, tokenizer_name="en_stem")
        sb.add_text_field("long_description", stored=True, tokenizer_name="en_stem")
        sb.add_text_field("section", stored=True, tokenizer_name="raw", fast=True)
        sb.add_text_field("priority", stored=True, tokenizer_name="raw", fast=True)
        sb.add_integer_field("installed_size", stored=True, fast=True, indexed=True)
        self.schema = sb.build()
        self.index = tantivy.Index(self.schema, path=str(path))

    def ingest(self, docs: Sequence[dict[str, Any]], batch: int = 1000) -> dict[str, Any]:
        t0 = time.perf_counter()
        writer = self.index.writer(heap_size=256_000_000, num_threads=2)
        for i in range(0, len(docs), batch):
            for d in docs[i : i + batch]:
                writer.add_document(
                    self.t.Document(
                        id=d["id"],
                        description=d["description"] or "",
                        long_description=d["long_description"] or "",
                        section=d["section"],
                        priority=d["priority"],
                        installed_size=int(d["installed_size"] or 0),
                    )
                )
            writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        dt = time.perf_counter() - t0
        return ingest_result(len(docs), batch, 1, dt)

    def _query(self, query: dict[str, Any]) -> Any:
        t = self.t
        parts = []
        for toks in parse_websearch(query["q"]):
            text = '"' + " ".join(toks) + '"'
            parts.append(
                (
                    t.Occur.Must,
                    self.index.parse_query(
                        text, ["description", "long_description"], field_boosts={"description": 2.0}
                    ),
                )
            )
        for field, value in sorted((query.get("filter") or {}).items()):
            if isinstance(value, dict):
                lo, hi = value.get("gte"), value.get("lte")
                parts.append(
                    (
                        t.Occur.Must,
                        t.Query.range_query(
                            self.schema,
                            field,
                            t.FieldType.Integer,
                            lo if lo is not None else -(2**62),
                            hi if hi is not None else 2**62,
                        ),
                    )
                )
            else:
                parts.append((t.Occur.Must, t.Query.term_query(self.schema, field, value)))
        return t.Query.boolean_query(parts)

    def search(self, query: dict[str, Any], limit: int = 10) -> dict[str, Any]:
        t = self.t
        searcher = self.index.searcher()
        q = self._query(query)
        res = searcher.search(q, limit, count=True)
        ids = []
        for gens in (
            (
                t.SnippetGenerator.create(searcher, q, self.schema, "description"),
                t.SnippetGenerator.create(searcher, q, self.schema, "long_description"),
            ),
        ):
            for _score, addr in res.hits:
                doc = searcher.doc(addr)
                for g in gens:
                    g.snippet_from_doc(doc).to_html()
                ids.append(doc["id"][0])
        facets = {}
        if query.get("facets"):
            aggs = {name: {"terms": {"field": name, "size": 20}} for name in query["facets"]}
            out = searcher.aggregate(q, aggs)
            for name in query["facets"]:
                facets[name] = [
                    {"value": b["key"], "count": b["doc_count"]} for b in out[name]["buckets"]
                ]
        # tantivy sets `count` when asked to (count=True); its type stubs leave it out (and
        # without the bench extra tantivy is not installed at all).
        total = int(res.count or 0)  # type: ignore[attr-defined,unused-ignore]
        return {"ids": ids, "total": total, "facets": facets}

    def size_bytes(self) -> int:
        return dir_size(self.path)
