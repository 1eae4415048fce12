"""`docuseek import`: stream a JSON array or NDJSON file into a collection in batches."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine

from docuseek import ingest
from docuseek.errors import DocuseekError, InvalidInput
from docuseek.payload import iter_ndjson

CHUNK_CHARS = 1 << 16


def iter_json_array(stream: IO[str]) -> Iterator[Any]:
    """Yield the elements of a top-level JSON array without loading the whole file."""
    decoder = json.JSONDecoder()
    buffer = ""
    pos = 0
    started = False
    eof = False

    def fill() -> bool:
        nonlocal buffer, pos, eof
        chunk = stream.read(CHUNK_CHARS)
        if not chunk:
            eof = True
            return False
        buffer = buffer[pos:] + chunk
        pos = 0
        return True

    while True:
        while pos < len(buffer) and buffer[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(buffer):
            if eof or not fill():
                raise InvalidInput("unexpected end of file: the JSON array is not closed")
            continue
        if not started:
            if buffer[pos] != "[":
                raise InvalidInput("the file is neither a JSON array nor NDJSON")
            started = True
            pos += 1
            continue
        if buffer[pos] == "]":
            return
        try:
            value, end = decoder.raw_decode(buffer, pos)
        except json.JSONDecodeError:
            if eof or not fill():
                raise InvalidInput(f"invalid JSON near character {pos} of a chunk") from None
            continue
        if end == len(buffer) and not eof and fill():
            continue  # a number may continue in the next chunk: decode again with more text
        yield value
        pos = end


def detect_ndjson(path: Path) -> bool:
    if path.suffix in (".ndjson", ".jsonl"):
        return True
    with path.open("r", encoding="utf-8") as handle:
        head = handle.read(4096).lstrip()
    return not head.startswith("[")


def iter_documents(path: Path) -> Iterator[Any]:
    if detect_ndjson(path):
        with path.open("rb") as handle:
            yield from iter_ndjson(handle)
    else:
        with path.open("r", encoding="utf-8") as handle:
            yield from iter_json_array(handle)


@dataclass
class ImportSummary:
    documents: int = 0
    batches: int = 0
    task_ids: list[int] = field(default_factory=list)


def import_file(
    engine: Engine,
    collection: str,
    path: Path,
    batch_size: int = 1000,
    on_batch: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Each batch is its own transaction and task; a bad document stops the import with the
    position of that document in the file (earlier batches stay stored)."""
    summary = ImportSummary()
    batch: list[Any] = []

    def flush() -> None:
        try:
            result = ingest.upsert_documents(engine, collection, batch)
        except DocuseekError as exc:
            first = (exc.details or [{}])[0] if isinstance(exc.details, list) else {}
            if "position" in first:
                where = summary.documents + int(first["position"])
                raise InvalidInput(f"document #{where} of the file: {first['message']}") from exc
            raise
        summary.documents += len(batch)
        summary.batches += 1
        summary.task_ids.append(result.task_id)
        if on_batch:
            on_batch(len(batch))
        batch.clear()

    for doc in iter_documents(path):
        batch.append(doc)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return summary
