"""Raw OpenSearch baseline: the bulk API and the _search API, no Docuseek in between.

Against osmem-server (an OpenSearch-compatible server) here, or any cluster given
by URL. The mapping mirrors the Docuseek collection: keyword fields, two english
text fields (description boosted like weight A over C), an integer. A load ends
with a _refresh, so its clock stops when the documents are searchable, as
Docuseek's does when the last task is `succeeded`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx

from bench.corpus import FIELDS
from bench.parallel import ingest_result, run_parallel
from docuseek.schema import Collection, FieldSpec
from docuseek.search import opensearch as dos
from docuseek.search import opensearch_query as dosq

INDEX = "raw_docs"


def _collection() -> Collection:
    """The bench collection as Docuseek's OpenSearch backend sees it."""
    fields = {
        name: FieldSpec(
            name=name,
            type=f["type"],
            weight=f.get("weight", "C"),
            facet=bool(f.get("facet", False)),
        )
        for name, f in FIELDS.items()
    }
    return Collection(id=0, name="bench", fields=fields, generation=1)


def mapping() -> dict[str, Any]:
    body = dos.index_body(_collection())
    body.setdefault("settings", {}).update({"number_of_shards": 1, "number_of_replicas": 0})
    return body


def search_body(query: dict[str, Any], limit: int = 10) -> dict[str, Any]:
    """The request Docuseek's OpenSearch backend sends for this query (same analysis, same
    query clauses, highlight, aggregations), built with its own functions."""
    coll = _collection()
    flt: list[dict[str, Any]] = []
    for field, value in sorted((query.get("filter") or {}).items()):
        flt.append(
            {"range": {field: value}} if isinstance(value, dict) else {"terms": {field: [value]}}
        )
    body: dict[str, Any] = {
        # Plain matching, as raw PostgreSQL's websearch_to_tsquery: Docuseek's defaults
        # (prefix on the last word, fuzzy words) would make the raw side do more work and
        # match more than the Docuseek requests it is compared with, which turn them off.
        "query": {
            "bool": {
                "must": [dosq.text_query(coll, query["q"], prefix=False, typo=False)],
                "filter": flt,
            }
        },
        "sort": [{"_score": {"order": "desc"}}, {"id": {"order": "asc", "missing": "_last"}}],
        "size": limit + 1,
        "track_total_hits": True,
        "track_scores": True,
        "highlight": {
            "encoder": "html",
            "pre_tags": ["<mark>"],
            "post_tags": ["</mark>"],
            "number_of_fragments": 2,
            "fragment_size": 160,
            "fields": {f.name: {} for f in coll.text_fields},
            "highlight_query": dosq.highlight_query(coll, query["q"], prefix=False, typo=False),
        },
    }
    if query.get("facets"):
        body["aggs"] = {
            name: {
                "terms": {
                    "field": name,
                    "size": 20,
                    "shard_size": 100,
                    "order": [{"_count": "desc"}, {"_key": "asc"}],
                }
            }
            for name in query["facets"]
        }
    return body


class RawOpenSearch:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._local = threading.local()

    def client(self) -> httpx.Client:
        c = getattr(self._local, "c", None)
        if c is None:
            c = self._local.c = httpx.Client(base_url=self.url, timeout=120)
        return c

    def reset(self) -> None:
        c = self.client()
        c.delete(f"/{INDEX}")
        r = c.put(f"/{INDEX}", json=mapping())
        r.raise_for_status()

    def drop(self) -> None:
        """Delete the index (osmem-server frees its memory) and check that it is gone."""
        c = self.client()
        c.delete(f"/{INDEX}").raise_for_status()
        if c.head(f"/{INDEX}").status_code != 404:
            raise RuntimeError(f"index {INDEX} still exists after DELETE")

    def _bulk(self, c: httpx.Client, docs: Sequence[dict[str, Any]]) -> None:
        lines = []
        for d in docs:
            lines.append(json.dumps({"index": {"_index": INDEX, "_id": d["id"]}}))
            lines.append(json.dumps(d))
        r = c.post(
            "/_bulk",
            content="\n".join(lines) + "\n",
            headers={"Content-Type": "application/x-ndjson"},
        )
        r.raise_for_status()
        if r.json().get("errors"):
            raise RuntimeError(f"bulk errors: {r.text[:500]}")

    def ingest(
        self, docs: Sequence[dict[str, Any]], batch: int, concurrency: int = 1
    ) -> dict[str, Any]:
        batches = [docs[i : i + batch] for i in range(0, len(docs), batch)]

        def work(k: int) -> None:
            with httpx.Client(base_url=self.url, timeout=120) as c:
                for b in batches[k::concurrency]:
                    self._bulk(c, b)

        t0 = time.perf_counter()
        run_parallel(work, concurrency)
        self.client().post(f"/{INDEX}/_refresh").raise_for_status()
        dt = time.perf_counter() - t0
        return ingest_result(len(docs), batch, concurrency, dt)

    def count(self) -> int:
        return int(self.client().get(f"/{INDEX}/_count").json()["count"])

    def request_line(self, query: dict[str, Any], limit: int = 10) -> tuple[str, str, str]:
        return ("POST", f"/{INDEX}/_search", json.dumps(search_body(query, limit)))

    def search(self, query: dict[str, Any], limit: int = 10) -> dict[str, Any]:
        r = self.client().post(f"/{INDEX}/_search", json=search_body(query, limit))
        r.raise_for_status()
        out = r.json()
        facets = {
            name: [{"value": b["key"], "count": b["doc_count"]} for b in agg["buckets"]]
            for name, agg in (out.get("aggregations") or {}).items()
        }
        total = out["hits"]["total"]
        return {
            "ids": [h["_id"] for h in out["hits"]["hits"]][:limit],
            "total": int(total["value"] if isinstance(total, dict) else total),
            "facets": facets,
        }

    def size_bytes(self) -> int | None:
        try:
            r = self.client().get(f"/_cat/indices/{INDEX}", params={"format": "json", "bytes": "b"})
            return int(r.json()[0]["store.size"])
        except Exception:  # noqa: BLE001 - not every compatible server reports it
            return None
