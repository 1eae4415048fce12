"""Real files for the file tests, made by real writers (reportlab, pypdf, python-docx,
zipfile) or taken from the machine (Debian's HTML documentation) and the repo's docs."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEBIAN_HTML = Path("/usr/share/doc/base-passwd/users-and-groups.html")


def pdf(pages: list[str], *, title: str | None = None, author: str | None = None) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4)
    if title:
        c.setTitle(title)
    if author:
        c.setAuthor(author)
    for text in pages:
        y = 800
        for line in text.splitlines():
            c.drawString(72, y, line)
            y -= 16
        c.showPage()
    c.save()
    return out.getvalue()


def long_pdf(count: int) -> bytes:
    """`count` pages; page n holds the word `pageword<n>` and some prose."""
    return pdf(
        [
            f"Chapter {n}: pageword{n}\nThe quick brown fox jumps over the lazy dog {n} times."
            for n in range(1, count + 1)
        ],
        title=f"A book of {count} pages",
    )


def encrypted_pdf() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf(["secret plans"]))))
    writer.encrypt(user_password="hunter2", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def truncated_pdf() -> bytes:
    whole = long_pdf(3)
    return whole[: len(whole) // 3]


def docx(paragraphs: list[str], *, title: str, author: str) -> bytes:
    import docx as python_docx

    document = python_docx.Document()
    document.core_properties.title = title
    document.core_properties.author = author
    document.add_heading(title, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zip_bomb_docx(expanded: int = 64 * 1024 * 1024) -> bytes:
    """A DOCX-looking zip whose document part inflates from ~64 KB to `expanded` bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        z.writestr("word/document.xml", b"\0" * expanded)
    return out.getvalue()


def latin1_text() -> bytes:
    return (
        "Le café de la gare sert une crème brûlée très appréciée.\n"
        "Où est passée la façade du théâtre? Déjà vu, à côté de l'hôtel.\n"
    ).encode("latin-1")


def markdown_doc() -> bytes:
    return (REPO / "docs" / "deploy.md").read_bytes()


def html_doc() -> bytes:
    """Debian's HTML documentation when the machine has it, else HTML that markdown-it
    renders from the repo's README."""
    if DEBIAN_HTML.exists():
        return DEBIAN_HTML.read_bytes()
    from markdown_it import MarkdownIt

    body = MarkdownIt().render((REPO / "README.md").read_text())
    page = f"<!DOCTYPE html><html><head><title>Docuseek</title></head><body>{body}</body></html>"
    return page.encode()


def odt(paragraphs: list[str], *, title: str, author: str) -> bytes:
    from odf import dc, meta
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    document = OpenDocumentText()
    document.meta.addElement(dc.Title(text=title))
    document.meta.addElement(meta.InitialCreator(text=author))
    document.text.addElement(H(outlinelevel=1, text=title))
    for text in paragraphs:
        document.text.addElement(P(text=text))
    out = io.BytesIO()
    document.write(out)
    return out.getvalue()


def epub(chapters: list[str], *, title: str, author: str) -> bytes:
    """A minimal EPUB 3 as the format's specification lays it out, written by zipfile."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0"'
            ' xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
            '<rootfile full-path="OEBPS/content.opf"'
            ' media-type="application/oebps-package+xml"/></rootfiles></container>',
        )
        items = "".join(
            f'<item id="c{i}" href="c{i}.xhtml" media-type="application/xhtml+xml"/>'
            for i in range(len(chapters))
        )
        spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
        z.writestr(
            "OEBPS/content.opf",
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
            '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"<dc:title>{title}</dc:title><dc:creator>{author}</dc:creator>"
            "<dc:language>en</dc:language></metadata>"
            f"<manifest>{items}</manifest><spine>{spine}</spine></package>",
        )
        for i, text in enumerate(chapters):
            z.writestr(
                f"OEBPS/c{i}.xhtml",
                '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml">'
                f"<head><title>Chapter {i}</title></head><body><p>{text}</p></body></html>",
            )
    return out.getvalue()
