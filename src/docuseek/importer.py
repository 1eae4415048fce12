"""`docuseek import`'s file reading: the documents of a JSON array or NDJSON file, streamed
(the command sends them in batches through `docuseek.client`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from docuseek.errors import InvalidInput
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
