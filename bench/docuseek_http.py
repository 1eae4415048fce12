"""Docuseek over HTTP: collection set-up, ingest, indexing lag, search requests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx

from bench.corpus import FIELDS
from bench.loadgen import percentile
from bench.parallel import ingest_result, run_parallel

T = TypeVar("T")
R = TypeVar("R")


class DocuseekClient:
    def __init__(self, url: str, admin_key: str) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {admin_key}"}
        self._local = threading.local()

    def client(self) -> httpx.Client:
        c = getattr(self._local, "c", None)
        if c is None:
            c = self._local.c = httpx.Client(base_url=self.url, headers=self.headers, timeout=300)
        return c

    def create_collection(self, name: str, index_phrases: bool = False) -> None:
        c = self.client()
        c.delete(f"/collections/{name}")
        r = c.put(f"/collections/{name}", json={"fields": FIELDS, "index_phrases": index_phrases})
        if r.status_code >= 400:
            raise RuntimeError(f"PUT /collections/{name}: {r.status_code} {r.text}")

    def post_batch(self, collection: str, docs: Sequence[dict[str, Any]]) -> int:
        body = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
        r = self.client().post(
            f"/collections/{collection}/documents",
            content=body.encode(),
            headers={"Content-Type": "application/x-ndjson"},
        )
        if r.status_code != 202:
            raise RuntimeError(f"POST documents: {r.status_code} {r.text[:500]}")
        return int(r.json()["task_id"])

    def task(self, task_id: int) -> dict[str, Any]:
        r = self.client().get(f"/tasks/{task_id}")
        r.raise_for_status()
        task: dict[str, Any] = r.json()
        return task

    def wait_tasks(self, task_ids: Sequence[int], timeout: float, poll: float = 0.05) -> float:
        """Block until every task has succeeded; return the perf_counter time it was seen.

        Polls every 50 ms, the default of Meilisearch's SDKs' waitForTask: until
        2026-11-26 every 10 ms, 100 requests a second that took CPU from the load being
        measured (64k, batch 1000, 2 runs of 3 rounds side by side: ratio median 0.72 at
        10 ms, 0.76 at 50 ms; bench/notes.md). The end is seen at most one poll late."""
        deadline = time.monotonic() + timeout
        pending = list(task_ids)
        # The last task first: the worker drains the outbox in order, so when it is done the
        # rest usually are; then confirm all of them (in parallel), re-polling stragglers.
        while pending:
            last = pending[-1]
            st = self.task(last)["status"]
            if st == "failed":
                raise RuntimeError(f"task {last} failed: {self.task(last)}")
            if st != "succeeded":
                if time.monotonic() > deadline:
                    raise TimeoutError(f"task {last} still {st}")
                time.sleep(poll)
                continue
            seen = time.perf_counter()
            pending.pop()
            statuses = _parallel(lambda t: self.task(t)["status"], pending, 8)
            failed = [t for t, s in zip(pending, statuses, strict=True) if s == "failed"]
            if failed:
                raise RuntimeError(f"tasks failed: {failed[:5]}: {self.task(failed[0])}")
            pending = [t for t, s in zip(pending, statuses, strict=True) if s != "succeeded"]
            if not pending:
                return seen
        return time.perf_counter()

    def ingest(
        self,
        collection: str,
        docs: Sequence[dict[str, Any]],
        batch: int,
        concurrency: int,
        timeout: float = 3600,
    ) -> dict[str, Any]:
        """Docs/s from the first POST until the last task is `succeeded` (searchable)."""
        batches = [docs[i : i + batch] for i in range(0, len(docs), batch)]
        task_ids: list[list[int]] = [[] for _ in range(concurrency)]
        post_lat: list[float] = []

        def work(k: int) -> None:
            for b in batches[k::concurrency]:
                t = time.perf_counter()
                task_ids[k].append(self.post_batch(collection, b))
                post_lat.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        run_parallel(work, concurrency)
        accepted = time.perf_counter()
        ids = sorted(x for lst in task_ids for x in lst)
        end = self.wait_tasks(ids, timeout)
        dt = end - t0
        post_lat.sort()
        return {
            **ingest_result(len(docs), batch, concurrency, dt),
            "accept_seconds": accepted - t0,
            "accept_docs_per_s": len(docs) / (accepted - t0),
            "tasks": len(ids),
            "post_p50_ms": percentile(post_lat, 50) * 1000,
            "post_p99_ms": percentile(post_lat, 99) * 1000,
        }

    # -- search ---------------------------------------------------------------------------

    @staticmethod
    def search_path(collection: str, query: dict[str, Any], limit: int = 10) -> str:
        params: list[tuple[str, str]] = [("q", query["q"]), ("limit", str(limit))]
        # The raw baselines run websearch_to_tsquery (or its OpenSearch equivalent): a
        # class compares like with like unless it asks for prefixes or typos itself.
        for feature in ("prefix", "typo"):
            params.append((feature, "true" if query.get(feature) else "false"))
        for field, value in sorted((query.get("filter") or {}).items()):
            if isinstance(value, dict):
                for op, sym in (("gte", ">="), ("gt", ">"), ("lte", "<="), ("lt", "<")):
                    if op in value:
                        params.append(("filter", f"{field}{sym}{value[op]}"))
            else:
                params.append(("filter", f"{field}:{value}"))
        if query.get("facets"):
            params.append(("facets", ",".join(query["facets"])))
        return f"/collections/{collection}/search?" + urlencode(params)

    def search(self, collection: str, query: dict[str, Any], limit: int = 10) -> dict[str, Any]:
        r = self.client().get(self.search_path(collection, query, limit))
        if r.status_code != 200:
            raise RuntimeError(f"search {query}: {r.status_code} {r.text[:300]}")
        out = r.json()
        return {
            "ids": [h["id"] for h in out["hits"]],
            "total": int(out["total"]),
            "total_relation": out.get("total_relation", "eq"),
            "facets": out.get("facets") or {},
            "took_ms": out.get("took_ms"),
        }

    def count(self, collection: str) -> int | None:
        r = self.client().get(f"/collections/{collection}")
        if r.status_code != 200:
            return None
        body = r.json()
        for key in ("documents", "document_count", "count", "num_documents"):
            if isinstance(body.get(key), int):
                return int(body[key])
        stats = body.get("stats") or {}
        for key in ("documents", "document_count", "count"):
            if isinstance(stats.get(key), int):
                return int(stats[key])
        return None

    # -- indexing lag ---------------------------------------------------------------------

    def lag(
        self,
        collection: str,
        docs: Sequence[dict[str, Any]],
        rate_docs_s: float,
        batch: int,
        duration: float,
        poll: float = 0.005,
    ) -> dict[str, Any]:
        """Steady writes at `rate_docs_s` (batches of `batch`); for each write, the time from
        its 202 until its documents are searchable: a search for a token unique to the batch
        finds all of them."""
        interval = batch / rate_docs_s
        n_writes = max(1, int(duration / interval))
        lags: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        threads: list[threading.Thread] = []

        def watch(token: str, expect: int, accepted_at: float) -> None:
            c = httpx.Client(base_url=self.url, headers=self.headers, timeout=60)
            deadline = accepted_at + 120
            try:
                while time.perf_counter() < deadline:
                    r = c.get(
                        f"/collections/{collection}/search",
                        params={
                            "q": token,
                            "limit": 1,
                            "highlight": "false",
                            "prefix": "false",  # the token itself, not words it begins
                            "typo": "false",
                        },
                    )
                    if r.status_code == 200 and r.json()["total"] >= expect:
                        with lock:
                            lags.append(time.perf_counter() - accepted_at)
                        return
                    time.sleep(poll)
                with lock:
                    errors.append(f"{token} not searchable after 120 s")
            finally:
                c.close()

        start = time.perf_counter()
        for w in range(n_writes):
            target = start + w * interval
            now = time.perf_counter()
            if target > now:
                time.sleep(target - now)
            token = f"lagprobe{w:05d}x"
            part = []
            for j in range(batch):
                d = dict(docs[(w * batch + j) % len(docs)])
                d["id"] = f"lag-{w}-{j}"
                d["description"] = f"{d['description']} {token}"
                part.append(d)
            self.post_batch(collection, part)
            accepted = time.perf_counter()
            t = threading.Thread(target=watch, args=(token, batch, accepted), daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            t.join(180)
        lags.sort()
        return {
            "writes": n_writes,
            "batch": batch,
            "rate_docs_s": rate_docs_s,
            "measured": len(lags),
            "errors": len(errors),
            "p50_ms": percentile(lags, 50) * 1000,
            "p99_ms": percentile(lags, 99) * 1000,
            "max_ms": (lags[-1] * 1000) if lags else float("nan"),
        }


def _parallel(fn: Callable[[T], R], items: Sequence[T], concurrency: int) -> list[R | None]:
    out: list[R | None] = [None] * len(items)
    idx = iter(range(len(items)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                i = next(idx, None)
            if i is None:
                return
            out[i] = fn(items[i])

    threads = [threading.Thread(target=work) for _ in range(min(concurrency, len(items)) or 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out
