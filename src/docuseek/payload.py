"""Parse a batch of documents: a JSON array, or NDJSON (one object per line).

Request bodies are spooled to a temporary file (in memory up to 1 MiB, then on disk
under TMPDIR) so a large upload does not sit in memory twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from docuseek.errors import InvalidInput, MalformedBody

SPOOL_MEMORY_BYTES = 1024 * 1024
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")


def is_ndjson(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() in NDJSON_TYPES


def _invalid_number(exc: ValueError, where: str, loc: list[str]) -> InvalidInput:
    """json's int-string limit (an integer of more than 4,300 digits) is a plain
    ValueError: the body is JSON, but no field of any type can hold that number."""
    why = f"a number is too long ({exc})"
    return InvalidInput(f"{where}: {why}", details=[{"loc": loc, "msg": why}])


def _why(exc: Exception) -> str:
    # json's parser recurses per level and gives up near 1,000 (a 500 before; storable.py
    # refuses documents deeper than MAX_DEPTH anyway).
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)


def iter_ndjson(stream: IO[bytes]) -> Iterator[Any]:
    for line_no, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            why = _why(exc)
            raise MalformedBody(
                f"line {line_no} is not valid JSON: {why}",
                details=[{"loc": ["body", f"line {line_no}"], "msg": why}],
            ) from None
        except ValueError as exc:
            raise _invalid_number(exc, f"line {line_no}", ["body", f"line {line_no}"]) from None


def parse_json_array(stream: IO[bytes]) -> list[Any]:
    try:
        data = json.load(stream)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        why = _why(exc)
        raise MalformedBody(
            f"body is not valid JSON: {why}", details=[{"loc": ["body"], "msg": why}]
        ) from None
    except ValueError as exc:
        raise _invalid_number(exc, "body", ["body"]) from None
    if isinstance(data, dict):
        data = [data]  # one document on its own is a batch of one
    if not isinstance(data, list):
        raise MalformedBody("body must be a JSON array of documents (or NDJSON)")
    return data


def read_documents(stream: IO[bytes], content_type: str | None, max_documents: int) -> list[Any]:
    docs: list[Any] = []
    source = iter_ndjson(stream) if is_ndjson(content_type) else iter(parse_json_array(stream))
    for doc in source:
        docs.append(doc)
        if len(docs) > max_documents:
            raise InvalidInput(
                f"too many documents in one request (limit {max_documents},"
                " DOCUSEEK_MAX_BATCH_DOCUMENTS); split the batch"
            )
    return docs
