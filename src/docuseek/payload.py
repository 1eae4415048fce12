"""Parse a batch of documents: a JSON array, or NDJSON (one object per line), sent as is
or compressed (Content-Encoding gzip or deflate).

Request bodies are spooled to a temporary file (in memory up to 1 MiB, then on disk
under TMPDIR) so a large upload does not sit in memory twice.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import IO, Any

from docuseek.errors import InvalidInput, MalformedBody, PayloadTooLarge, UnsupportedEncoding

SPOOL_MEMORY_BYTES = 1024 * 1024
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")


# Content-Encoding → zlib's window bits: gzip's framing, or zlib's (what HTTP calls deflate).
_WINDOW_BITS = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,
}


class BodyDecoder:
    """A request body decoded as its Content-Encoding says, chunk by chunk. The decoded
    size is held to `max_bytes` too: a few kilobytes of gzip can unpack to gigabytes."""

    def __init__(self, encoding: str | None, max_bytes: int) -> None:
        self.encoding = (encoding or "identity").strip().lower()
        if self.encoding in ("", "identity"):
            self._inflater = None
        elif self.encoding in _WINDOW_BITS:
            self._inflater = zlib.decompressobj(_WINDOW_BITS[self.encoding])
        else:
            raise UnsupportedEncoding(
                f"Content-Encoding {self.encoding!r} is not supported: send gzip, deflate"
                " or an uncompressed body"
            )
        self.max_bytes = max_bytes
        self.size = 0

    def feed(self, chunk: bytes) -> bytes:
        if self._inflater is None:
            return chunk  # its size is held by BodyLimitMiddleware
        if self._inflater.eof:
            if chunk:
                raise MalformedBody(f"data after the end of the {self.encoding} stream")
            return b""
        try:
            out = self._inflater.decompress(chunk, self.max_bytes - self.size + 1)
        except zlib.error as exc:
            raise MalformedBody(f"the body is not valid {self.encoding}: {exc}") from None
        self.size += len(out)
        if self.size > self.max_bytes or self._inflater.unconsumed_tail:
            raise PayloadTooLarge(
                f"the decompressed body is larger than the limit of {self.max_bytes} bytes"
                " (DOCUSEEK_MAX_BODY_BYTES); split the batch"
            )
        if self._inflater.unused_data:
            raise MalformedBody(f"data after the end of the {self.encoding} stream")
        return out

    def finish(self) -> None:
        if self._inflater is not None and not self._inflater.eof:
            raise MalformedBody(f"the {self.encoding} body ends before its stream does")


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
