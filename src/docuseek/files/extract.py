"""Extraction of one file's text and metadata. Runs inside the sandbox child (sandbox.py):
nothing here may touch the network or the database, and temporary files go to TMPDIR.

Every failure is an ExtractionError whose message a person can act on.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from docuseek.files import detect as D

# Bump when a change alters what is extracted: `docuseek reindex` re-extracts documents
# extracted by another version.
EXTRACTOR_VERSION = "1"

# Zip-based formats (DOCX, ODT, EPUB) are checked from their directory before any member
# is decompressed; zipfile stops a member at its declared size, so the sums bound the work.
ZIP_MAX_UNCOMPRESSED = 200 * 1024 * 1024
ZIP_MAX_RATIO = 100
ZIP_MAX_MEMBERS = 10_000


WESTERN_MAX_CHAOS = 0.2  # charset-normalizer's own "reads as text" threshold


class ExtractionError(Exception):
    """The file cannot be extracted; the message says why, for a person."""


@dataclass
class Extracted:
    content_type: str
    content: str
    title: str | None = None
    author: str | None = None
    created: str | None = None  # ISO 8601, UTC
    language: str | None = None
    pages: int | None = None
    page_texts: list[str] | None = None  # PDF only: the text of each page, in order

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def extract(data: bytes, filename: str | None = None) -> Extracted:
    kind = D.detect(data, filename)
    if kind == D.PDF:
        return _pdf(data)
    if kind in (D.DOCX, D.ODT, D.EPUB):
        check_zip(data, kind)
        return {D.DOCX: _docx, D.ODT: _odt, D.EPUB: _epub}[kind](data)
    if kind == D.HTML:
        return _html(_decode(data), D.HTML)
    if kind == D.MARKDOWN:
        return _markdown(_decode(data))
    if kind == D.TEXT:
        return Extracted(D.TEXT, _decode(data).strip())
    what = "a zip archive" if kind == D.ZIP else f"{kind}" if kind != D.OCTET else "binary data"
    raise ExtractionError(
        f"unsupported file type ({what}): upload PDF, DOCX, ODT, EPUB, HTML, Markdown or text"
    )


# -- zip formats -------------------------------------------------------------------------


def check_zip(data: bytes, kind: str) -> None:
    name = {D.DOCX: "DOCX", D.ODT: "ODT", D.EPUB: "EPUB"}.get(kind, "zip")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ExtractionError(
            f"corrupt {name} file ({exc}): its zip container is damaged"
        ) from None
    if len(infos) > ZIP_MAX_MEMBERS:
        raise ExtractionError(f"{name} file has {len(infos)} parts: more than {ZIP_MAX_MEMBERS}")
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos)
    if total > ZIP_MAX_UNCOMPRESSED:
        raise ExtractionError(
            f"{name} file would expand to {total} bytes, more than {ZIP_MAX_UNCOMPRESSED}:"
            " refused as a possible zip bomb"
        )
    for info in infos:
        if info.file_size > 1024 * 1024 and info.file_size > ZIP_MAX_RATIO * max(
            1, info.compress_size
        ):
            ratio = info.file_size // max(1, info.compress_size)
            raise ExtractionError(
                f"{name} file's part {info.filename!r} expands {ratio} times"
                f" (more than {ZIP_MAX_RATIO}): refused as a possible zip bomb"
            )
    if total > 1024 * 1024 and total > ZIP_MAX_RATIO * max(1, packed):
        raise ExtractionError(
            f"{name} file expands {total // max(1, packed)} times (more than {ZIP_MAX_RATIO}):"
            " refused as a possible zip bomb"
        )


def _docx(data: bytes) -> Extracted:
    import docx  # python-docx

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:
        raise ExtractionError(f"corrupt DOCX file: {exc}") from None
    parts = [p.text for p in document.paragraphs if p.text.strip()]
    for table in document.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells if c.text.strip()]
            if cells:
                parts.append(" | ".join(cells))
    props = document.core_properties
    return Extracted(
        D.DOCX,
        "\n".join(parts),
        title=_clean(props.title),
        author=_clean(props.author),
        created=_iso(props.created),
        language=_clean(props.language),
    )


_ODF = {
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "meta": "urn:oasis:names:tc:opendocument:xmlns:meta:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
}
_ODF_BLOCKS = {f"{{{_ODF['text']}}}p", f"{{{_ODF['text']}}}h"}


def _odt(data: bytes) -> Extracted:
    """OpenDocument text from its content.xml and meta.xml, read with the standard
    library's parser (whose expat refuses entity expansion bombs)."""
    from xml.etree import ElementTree

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            content = ElementTree.fromstring(archive.read("content.xml"))
            names = set(archive.namelist())
            meta = ElementTree.fromstring(archive.read("meta.xml")) if "meta.xml" in names else None
    except (KeyError, ElementTree.ParseError, zipfile.BadZipFile) as exc:
        raise ExtractionError(f"corrupt ODT file: {exc}") from None
    body = content.find("office:body/office:text", _ODF)
    parts = [_odf_text(e) for e in _odf_blocks(body)] if body is not None else []

    def first(path: str) -> str | None:
        node = meta.find(f"office:meta/{path}", _ODF) if meta is not None else None
        return _clean(node.text) if node is not None else None

    return Extracted(
        D.ODT,
        "\n".join(p for p in parts if p.strip()),
        title=first("dc:title"),
        author=first("dc:creator") or first("meta:initial-creator"),
        created=_iso_text(first("meta:creation-date")),
        language=first("dc:language"),
    )


def _odf_blocks(element: Any) -> Any:
    """Paragraphs and headings in document order (their own text includes nested spans)."""
    for child in element:
        if child.tag in _ODF_BLOCKS:
            yield child
        else:
            yield from _odf_blocks(child)


def _odf_text(element: Any) -> str:
    """An element's text, with ODF's space, tab and line-break elements spelled out."""
    out = [element.text or ""]
    for child in element:
        name = child.tag.rsplit("}", 1)[-1]
        if name == "s":
            out.append(" " * int(child.get(f"{{{_ODF['text']}}}c", "1")))
        elif name == "tab":
            out.append("\t")
        elif name == "line-break":
            out.append("\n")
        elif name not in ("note", "annotation"):
            out.append(_odf_text(child))
        out.append(child.tail or "")
    return "".join(out)


def _epub(data: bytes) -> Extracted:
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        try:
            container = HTMLParser(
                archive.read("META-INF/container.xml").decode("utf-8", "replace")
            )
            rootfile = container.css_first("rootfile")
            opf_path = rootfile.attributes.get("full-path") if rootfile else None
            if not opf_path:
                raise KeyError("rootfile")
            opf = HTMLParser(archive.read(opf_path).decode("utf-8", "replace"))
        except KeyError as exc:
            raise ExtractionError(f"corrupt EPUB file: missing {exc}") from None
        base = opf_path.rsplit("/", 1)[0] + "/" if "/" in opf_path else ""
        items = {
            node.attributes.get("id"): node.attributes.get("href") or "" for node in opf.css("item")
        }
        texts = []
        for ref in opf.css("itemref"):
            href = items.get(ref.attributes.get("idref"))
            if href and base + href in archive.namelist():
                page = _html(archive.read(base + href).decode("utf-8", "replace"), D.EPUB)
                texts.append(page.content)

    def meta(tag: str) -> str | None:
        node = opf.css_first(tag.replace(":", "\\:"))
        return _clean(node.text()) if node else None

    return Extracted(
        D.EPUB,
        "\n\n".join(t for t in texts if t),
        title=meta("dc:title"),
        author=meta("dc:creator"),
        created=_iso_text(meta("dc:date")),
        language=meta("dc:language"),
    )


# -- PDF ---------------------------------------------------------------------------------


def _pdf(data: bytes) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError, PdfStreamError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("encrypted PDF: supply a password-free copy")
        texts = [_clean_page(page.extract_text() or "") for page in reader.pages]
        info = reader.metadata
    except ExtractionError:
        raise
    except FileNotDecryptedError:
        raise ExtractionError("encrypted PDF: supply a password-free copy") from None
    except (PdfReadError, PdfStreamError, ValueError, KeyError, OSError) as exc:
        raise ExtractionError(f"corrupt or truncated PDF ({exc}): supply a complete copy") from None
    except NotImplementedError as exc:
        raise ExtractionError(f"PDF uses an unsupported feature: {exc}") from None
    if not texts:
        raise ExtractionError("corrupt or truncated PDF: no page could be read")
    title = author = created = None
    if info is not None:
        title, author = _clean(info.title), _clean(info.author)
        try:
            created = _iso(info.creation_date)
        except (ValueError, TypeError):
            created = None
    return Extracted(
        D.PDF,
        "\n\n".join(texts).strip(),
        title=title,
        author=author,
        created=created,
        pages=len(texts),
        page_texts=texts,
    )


def _clean_page(text: str) -> str:
    return text.replace("\x00", "").strip()


# -- text formats --------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    from charset_normalizer import from_bytes

    if not data.strip():
        return ""
    try:
        return data.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError:
        pass
    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise ExtractionError("not text in any known encoding: unsupported binary file")
    # Short Western European text reads about as well in several 8-bit code pages; the
    # most common one (Windows-1252, a superset of Latin-1) wins unless it reads badly.
    for match in matches:
        if match.encoding == "cp1252" and match.chaos < WESTERN_MAX_CHAOS:
            return str(match)
    return str(best)


_BLOCK_END = re.compile(
    r"</(p|div|h[1-6]|li|dt|dd|tr|td|th|pre|blockquote|section|article|table|title)\s*>|<br\s*/?>",
    re.I,
)
_BOILERPLATE = "script, style, noscript, template, nav, header, footer, aside, form, iframe, svg"


def _html(markup: str, content_type: str) -> Extracted:
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    # Block ends become line ends, so that a heading and the paragraph after it, or two
    # table cells, do not run into one word.
    tree = HTMLParser(_BLOCK_END.sub(lambda m: "\n" + m.group(0), markup))
    title_node = tree.css_first("title")
    title = _clean(title_node.text()) if title_node else None
    html = tree.css_first("html")
    language = _clean(html.attributes.get("lang")) if html else None
    author_node = tree.css_first('meta[name="author"]')
    author = _clean(author_node.attributes.get("content")) if author_node else None
    for node in tree.css(_BOILERPLATE):
        node.decompose()
    for node in tree.css('[role="navigation"], [role="banner"], [role="contentinfo"]'):
        node.decompose()
    main = tree.css_first('main, [role="main"], article') or tree.body or tree.root
    text = main.text(separator="") if main else ""
    if title is None:
        heading = tree.css_first("h1")
        title = _clean(heading.text()) if heading else None
    return Extracted(content_type, _squeeze(text), title=title, author=author, language=language)


def _markdown(source: str) -> Extracted:
    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark", {"html": False}).render(source)
    page = _html(f"<html><body>{rendered}</body></html>", D.MARKDOWN)
    heading = re.search(r"^#{1,6}\s+(.+?)\s*#*\s*$", source, re.M)
    page.title = heading.group(1) if heading else page.title
    return page


def _squeeze(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).replace("\x00", "").split())
    return text or None


def _iso(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return None
    parsed = value if value.tzinfo else value.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_text(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return _iso(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None
