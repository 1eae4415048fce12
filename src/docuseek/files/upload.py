"""A multipart upload read as it streams: each file to a spooled temporary file, hashed
and counted on the way, so a file over DOCUSEEK_MAX_FILE_BYTES is refused (413) as soon
as its bytes pass the limit, not after the request has been buffered."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from docuseek.errors import DocuseekError, InvalidInput, MalformedBody

if TYPE_CHECKING:  # defined for type checkers only
    from python_multipart.multipart import MultipartCallbacks

MAX_FILES_PER_REQUEST = 1000
MAX_FIELDS_BYTES = 4 * 1024 * 1024  # the `fields` part: JSON, not a file
SPOOL_MEMORY_BYTES = 1024 * 1024
CHUNK_BYTES = 1024 * 1024  # bytea rows of file_chunks


class PayloadTooLarge(DocuseekError):
    status_code = 413
    code = "payload_too_large"


@dataclass
class UploadedFile:
    filename: str | None
    spool: IO[bytes]
    size: int = 0
    hasher: Any = field(default_factory=hashlib.sha256)

    @property
    def sha256(self) -> str:
        return str(self.hasher.hexdigest())

    def chunks(self) -> Iterator[bytes]:
        self.spool.seek(0)
        while True:
            block = self.spool.read(CHUNK_BYTES)
            if not block:
                return
            yield block

    def read_all(self) -> bytes:
        self.spool.seek(0)
        return self.spool.read()


@dataclass
class Upload:
    files: list[UploadedFile]
    fields: list[dict[str, Any]]  # one object per file, in order ({} when not given)

    def close(self) -> None:
        for f in self.files:
            f.spool.close()


class _Reader:
    def __init__(self, max_file_bytes: int) -> None:
        self.max_file_bytes = max_file_bytes
        self.files: list[UploadedFile] = []
        self.fields_raw: bytearray | None = None
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._current: UploadedFile | None = None
        self._in_fields = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    def on_part_begin(self) -> None:
        self._headers = {}
        self._current = None
        self._in_fields = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in options or name == "file":
            if name != "file":
                raise InvalidInput(f"file part named {name!r}: send files as parts named 'file'")
            if len(self.files) >= MAX_FILES_PER_REQUEST:
                raise InvalidInput(f"more than {MAX_FILES_PER_REQUEST} files in one request")
            filename = options.get(b"filename", b"").decode("utf-8", "replace") or None
            declared = self._headers.get(b"content-length", b"").strip()
            if declared.isdigit() and int(declared) > self.max_file_bytes:
                raise self._too_large(filename)
            # Closed by Upload.close(), after the request's transaction.
            spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
            self._current = UploadedFile(filename.rsplit("/", 1)[-1] if filename else None, spool)
            self.files.append(self._current)
        elif name == "fields":
            if self.fields_raw is not None:
                raise InvalidInput("the 'fields' part was sent twice")
            self.fields_raw = bytearray()
            self._in_fields = True
        else:
            raise InvalidInput(f"unexpected form part {name!r}: send 'file' parts and 'fields'")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        block = data[start:end]
        if self._current is not None:
            self._current.size += len(block)
            if self._current.size > self.max_file_bytes:
                raise self._too_large(self._current.filename)
            self._current.hasher.update(block)
            self._current.spool.write(block)
        elif self._in_fields and self.fields_raw is not None:
            if len(self.fields_raw) + len(block) > MAX_FIELDS_BYTES:
                raise PayloadTooLarge(f"the 'fields' part is larger than {MAX_FIELDS_BYTES} bytes")
            self.fields_raw.extend(block)

    def _too_large(self, filename: str | None) -> PayloadTooLarge:
        which = f"file {filename!r}" if filename else "a file"
        return PayloadTooLarge(
            f"{which} is larger than the limit of {self.max_file_bytes} bytes"
            " (DOCUSEEK_MAX_FILE_BYTES); nothing was stored"
        )


async def read_upload(
    content_type: str | None, stream: AsyncIterator[bytes], max_file_bytes: int
) -> Upload:
    kind, params = parse_options_header(content_type or "")
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise InvalidInput(
            "send the files as multipart/form-data: parts named 'file' (one per file) and"
            " optionally a 'fields' part, a JSON array with one object per file"
        )
    reader = _Reader(max_file_bytes)
    try:
        parser = MultipartParser(params[b"boundary"], reader.callbacks())
        async for chunk in stream:
            parser.write(chunk)
        parser.finalize()
        upload = Upload(reader.files, _fields(reader.fields_raw, len(reader.files)))
    except BaseException as exc:
        for f in reader.files:
            f.spool.close()
        if isinstance(exc, FormParserError):
            raise MalformedBody(f"malformed multipart body: {exc}") from None
        raise
    if not upload.files:
        raise InvalidInput("no file in the request: send at least one part named 'file'")
    return upload


def _fields(raw: bytearray | None, count: int) -> list[dict[str, Any]]:
    if raw is None:
        return [{} for _ in range(count)]
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise MalformedBody(f"the 'fields' part is not JSON: {exc}") from None
    if isinstance(value, dict) and count == 1:
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidInput("'fields' must be a JSON array of objects, one per file, in order")
    if len(value) != count:
        raise InvalidInput(
            f"'fields' has {len(value)} objects for {count} files: send one per file"
        )
    return value
