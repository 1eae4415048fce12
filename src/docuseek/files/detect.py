"""What a file is, from its bytes (magic numbers and, for zips, their member names); the
name only tells Markdown from plain text, both being text."""

from __future__ import annotations

import io
import re
import zipfile

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODT = "application/vnd.oasis.opendocument.text"
EPUB = "application/epub+zip"
HTML = "text/html"
MARKDOWN = "text/markdown"
TEXT = "text/plain"
ZIP = "application/zip"
OCTET = "application/octet-stream"
SUPPORTED = frozenset({PDF, DOCX, ODT, EPUB, HTML, MARKDOWN, TEXT})

# Formats we recognise but do not extract, so the reason can name them.
_BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\x1f\x8b", "application/gzip"),
    (b"\x7fELF", "application/x-executable"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),  # .doc, .xls
    (b"Rar!", "application/vnd.rar"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"%!PS", "application/postscript"),
)
_HTML_START = re.compile(rb"^\s*(<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>])", re.I)
_HTML_ANYWHERE = re.compile(rb"<(html|head|body|title|div|p)[\s>]", re.I)
_MARKDOWN_NAME = re.compile(r"\.(md|markdown|mdown|mkd)$", re.I)
_MARKDOWN_LINES = re.compile(rb"^(#{1,6} \S|```|\* \S|- \S|\d+\. \S)", re.M)


def detect(data: bytes, filename: str | None = None) -> str:
    """The MIME type of `data`, from its content."""
    head = data[:2048]
    if b"%PDF-" in head[:1024]:
        return PDF
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _zip_kind(data)
    for magic, kind in _BINARY_MAGIC:
        if head.startswith(magic):
            return kind
    stripped = head.lstrip(b"\xef\xbb\xbf")
    if _HTML_START.match(stripped):
        return HTML
    if _looks_binary(head):
        return OCTET
    if filename and _MARKDOWN_NAME.search(filename):
        return MARKDOWN
    if stripped.lstrip().startswith(b"<") and _HTML_ANYWHERE.search(head):
        return HTML
    if len(_MARKDOWN_LINES.findall(head)) >= 2:
        return MARKDOWN
    return TEXT


def _zip_kind(data: bytes) -> str:
    """A zip's kind from its directory only (no member is decompressed but `mimetype`,
    which the OpenDocument and EPUB formats store uncompressed)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "mimetype" in names:
                info = archive.getinfo("mimetype")
                if info.file_size <= 100:
                    declared = archive.read("mimetype").decode("ascii", "replace").strip()
                    if declared in (ODT, EPUB):
                        return declared
                    return declared or ZIP
            if "[Content_Types].xml" in names and "word/document.xml" in names:
                return DOCX
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        return ZIP
    return ZIP


def _looks_binary(head: bytes) -> bool:
    """NUL bytes mean binary, unless the text is UTF-16 or UTF-32 (which have many)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    return b"\x00" in head
