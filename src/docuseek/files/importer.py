"""`docuseek import --files DIR`: upload a folder's files (recursively) through the HTTP
API, in requests of a few files each, with progress; each file's id is its path under DIR,
so importing the folder again updates the same documents and skips unchanged ones."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

MAX_FILES_PER_REQUEST = 32
MAX_BYTES_PER_REQUEST = 16 * 1024 * 1024


@dataclass
class FilesImportSummary:
    files: int = 0
    bytes: int = 0
    task_ids: list[int] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # relative path -> reason
    ids: list[str] = field(default_factory=list)  # ids of the files sent


def api_client(url: str, key: str, timeout: float = 300.0) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout)


def walk(root: Path) -> Iterator[Path]:
    """Regular files under `root`, in path order, leaving out hidden files and folders."""
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and not path.is_symlink():
            yield path


def batches(paths: list[Path]) -> Iterator[list[Path]]:
    batch: list[Path] = []
    size = 0
    for path in paths:
        length = path.stat().st_size
        if batch and (len(batch) >= MAX_FILES_PER_REQUEST or size + length > MAX_BYTES_PER_REQUEST):
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += length
    if batch:
        yield batch


def import_files(
    client: httpx.Client,
    collection: str,
    root: Path,
    on_file: Callable[[int, int], None] | None = None,
) -> FilesImportSummary:
    """Upload every file under `root`; a file the API refuses is reported, not fatal.
    `on_file(done, total)` after each request."""
    paths = list(walk(root))
    summary = FilesImportSummary()
    for batch in batches(paths):
        _send(client, collection, root, batch, summary)
        if on_file:
            on_file(summary.files + len(summary.refused), len(paths))
    return summary


def _send(
    client: httpx.Client,
    collection: str,
    root: Path,
    batch: list[Path],
    summary: FilesImportSummary,
) -> None:
    ids = [path.relative_to(root).as_posix() for path in batch]
    handles = [path.open("rb") for path in batch]
    try:
        response = client.post(
            f"/collections/{collection}/files",
            files=[
                ("file", (path.name, handle)) for path, handle in zip(batch, handles, strict=True)
            ],
            data={"fields": _json([{"id": i} for i in ids])},
        )
    finally:
        for handle in handles:
            handle.close()
    if response.status_code == 202:
        summary.ids += ids
        summary.files += len(batch)
        summary.bytes += sum(path.stat().st_size for path in batch)
        summary.task_ids.append(int(response.json()["task_id"]))
        return
    if len(batch) > 1 and response.status_code in (413, 422):
        for path in batch:  # one file spoiled the request: send them one by one
            _send(client, collection, root, [path], summary)
        return
    if response.status_code in (413, 422):
        summary.refused[ids[0]] = _message(response)
        return
    raise RuntimeError(f"upload failed with {response.status_code}: {_message(response)}")


def wait_for_tasks(
    client: httpx.Client, task_ids: list[int], poll: float = 0.5
) -> dict[int, dict[str, Any]]:
    """Poll the tasks until each has finished; returns them by id."""
    done: dict[int, dict[str, Any]] = {}
    while len(done) < len(task_ids):
        for task_id in task_ids:
            if task_id in done:
                continue
            response = client.get(f"/tasks/{task_id}")
            response.raise_for_status()
            task = response.json()
            if task["status"] in ("succeeded", "failed"):
                done[task_id] = task
        if len(done) < len(task_ids):
            time.sleep(poll)
    return done


def failed_files(client: httpx.Client, collection: str, ids: list[str]) -> dict[str, str]:
    """Reasons of the files among `ids` that could not be extracted (after their tasks)."""
    wanted, found, after = set(ids), {}, ""
    while True:
        response = client.get(
            f"/collections/{collection}/files/failed", params={"after": after, "limit": 1000}
        )
        response.raise_for_status()
        page = response.json()
        found.update({f["id"]: f["error"] for f in page if f["id"] in wanted})
        if len(page) < 1000:
            return found
        after = page[-1]["id"]


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:500]
