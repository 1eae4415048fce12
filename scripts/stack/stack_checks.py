#!/usr/bin/env python3
"""End-to-end checks the stack test runs against a live stack (standard library only).

    stack_checks.py ingest     --api URL --key KEY --collection C --count N
    stack_checks.py find       --api URL --key KEY --collection C --count N
    stack_checks.py absent     --api URL --key KEY --collection C
    stack_checks.py prometheus --url URL --dashboard FILE [--jobs a,b,c]

`ingest` creates a collection, sends N documents through the api, waits until
the task has succeeded and finds them by search; `find` only searches (after a
restore); `absent` checks a fresh database does not have them; `prometheus`
checks, through Prometheus's HTTP API, that the scrape targets are up and that
every query of the Grafana dashboard returns data. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

FIELDS = {
    "title": {"type": "text", "weight": "A"},
    "body": {"type": "text"},
    "section": {"type": "keyword", "facet": True},
    "year": {"type": "integer"},
}
TOPICS = ["lighthouse", "harbor", "glacier", "orchard", "observatory", "canyon", "lagoon", "meadow"]


def request(
    method: str, url: str, key: str | None = None, body: Any = None, timeout: float = 30
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


def documents(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"stack-{i:04d}",
            "title": f"Stack check {i} about the {TOPICS[i % len(TOPICS)]}",
            "body": f"stackcheck document number {i}; unique token uniq{i:04d}z; "
            f"the {TOPICS[(i * 3) % len(TOPICS)]} by the sea",
            "section": TOPICS[i % len(TOPICS)],
            "year": 1990 + i % 30,
        }
        for i in range(count)
    ]


def fail(message: str) -> None:
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def search(api: str, key: str, collection: str, q: str) -> dict[str, Any]:
    url = f"{api}/collections/{urllib.parse.quote(collection)}/search?" + urllib.parse.urlencode(
        {"q": q, "limit": 100}
    )
    status, body = request("GET", url, key)
    if status != 200:
        fail(f"search {q!r}: HTTP {status} {body}")
    return body


def cmd_ingest(args: argparse.Namespace) -> None:
    api, key, coll = args.api.rstrip("/"), args.key, args.collection
    status, body = request("PUT", f"{api}/collections/{coll}", key, {"fields": FIELDS})
    if status not in (200, 201):
        fail(f"PUT /collections/{coll}: HTTP {status} {body}")
    print(f"collection {coll}: HTTP {status}")
    status, body = request(
        "POST", f"{api}/collections/{coll}/documents", key, documents(args.count)
    )
    if status != 202 or body.get("status") != "enqueued":
        fail(f"POST documents: HTTP {status} {body}")
    task = body["task_id"]
    print(f"{args.count} documents: HTTP 202, task {task} enqueued")
    deadline = time.monotonic() + args.timeout
    while True:
        status, body = request("GET", f"{api}/tasks/{task}", key)
        state = body.get("status") if isinstance(body, dict) else None
        if state == "succeeded":
            break
        if state == "failed":
            fail(f"task {task} failed: {body}")
        if time.monotonic() > deadline:
            fail(f"task {task} still {state} after {args.timeout}s")
        time.sleep(0.5)
    print(f"task {task}: succeeded")
    cmd_find(args)


def cmd_find(args: argparse.Namespace) -> None:
    api, key, coll = args.api.rstrip("/"), args.key, args.collection
    body = search(api, key, coll, "stackcheck")
    if body.get("total") != args.count:
        fail(f"search 'stackcheck': total {body.get('total')}, expected {args.count}")
    for i in (0, args.count // 2, args.count - 1):
        hits = search(api, key, coll, f"uniq{i:04d}z")["hits"]
        # The document with the unique token ranks first. (Not "only": an engine
        # may add weaker matches, as osmem-server does with some analyzers.)
        if not hits or hits[0]["id"] != f"stack-{i:04d}":
            fail(
                f"search 'uniq{i:04d}z': top hits {[h['id'] for h in hits[:5]]}, "
                f"expected stack-{i:04d} first"
            )
    print(f"search: {args.count} documents found; each unique token ranks its document first")


def cmd_absent(args: argparse.Namespace) -> None:
    api, key, coll = args.api.rstrip("/"), args.key, args.collection
    url = f"{api}/collections/{coll}/search?q=stackcheck"
    status, body = request("GET", url, key)
    total = body.get("total") if isinstance(body, dict) else None
    if status == 200 and total:
        fail(f"fresh database already has {total} documents in {coll}")
    print(f"fresh database: collection {coll} has no documents (HTTP {status})")


def prom_query(url: str, expr: str) -> list[Any]:
    q = urllib.parse.urlencode({"query": expr})
    status, body = request("GET", f"{url}/api/v1/query?{q}")
    if status != 200 or body.get("status") != "success":
        raise RuntimeError(f"HTTP {status}: {body}")
    return body["data"]["result"]


def dashboard_queries(path: str) -> list[tuple[str, str]]:
    with open(path) as f:
        dash = json.load(f)
    out: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for p in panels:
            walk(p.get("panels", []))
            for t in p.get("targets", []):
                if t.get("expr"):
                    expr = t["expr"].replace("$__rate_interval", "1m").replace("$__interval", "30s")
                    out.append((f"{p.get('title')} [{t.get('refId')}]", expr))

    walk(dash.get("panels", []))
    return out


def cmd_prometheus(args: argparse.Namespace) -> None:
    url = args.url.rstrip("/")
    jobs = [j for j in args.jobs.split(",") if j]
    deadline = time.monotonic() + args.timeout
    while True:
        status, body = request("GET", f"{url}/api/v1/targets?state=active")
        targets = body["data"]["activeTargets"] if status == 200 else []
        health = {}
        for t in targets:
            health.setdefault(t["labels"]["job"], []).append(t["health"])
        missing = [j for j in jobs if not health.get(j) or any(h != "up" for h in health[j])]
        if not missing:
            break
        if time.monotonic() > deadline:
            fail(f"targets not up after {args.timeout}s: {missing}; seen {health}")
        time.sleep(2)
    for j in jobs:
        print(f"target {j}: {len(health[j])} up")
    queries = dashboard_queries(args.dashboard)
    pending = dict(queries)
    results: dict[str, int] = {}
    while pending:
        for title, expr in list(pending.items()):
            try:
                result = prom_query(url, expr)
            except RuntimeError as exc:
                fail(f"dashboard query {title}: {expr}: {exc}")
            if result:
                results[title] = len(result)
                del pending[title]
        if not pending:
            break
        if time.monotonic() > deadline:
            fail(
                "dashboard queries without data after "
                f"{args.timeout}s: " + "; ".join(f"{t}: {e}" for t, e in pending.items())
            )
        time.sleep(3)
    for title, _ in queries:
        print(f"dashboard query ok ({results[title]} series): {title}")
    print(f"prometheus: {len(jobs)} targets up, {len(queries)} dashboard queries return data")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("ingest", "find", "absent"):
        p = sub.add_parser(name)
        p.add_argument("--api", required=True)
        p.add_argument("--key", required=True)
        p.add_argument("--collection", default="stackcheck")
        p.add_argument("--count", type=int, default=200)
        p.add_argument("--timeout", type=float, default=120)
    p = sub.add_parser("prometheus")
    p.add_argument("--url", required=True)
    p.add_argument("--dashboard", required=True)
    p.add_argument("--jobs", default="docuseek-api,docuseek-worker,postgres")
    p.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    {"ingest": cmd_ingest, "find": cmd_find, "absent": cmd_absent, "prometheus": cmd_prometheus}[
        args.cmd
    ](args)


if __name__ == "__main__":
    main()
