"""Extraction in the sandbox child, without a database: formats, limits, hostile files."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from docuseek.files import detect
from docuseek.files.extract import ExtractionError, extract
from docuseek.files.sandbox import Limits, extract_in_child
from tests import files_corpus as C


def test_a_200_page_pdf_keeps_each_page_text() -> None:
    started = time.monotonic()
    result = extract_in_child(C.long_pdf(200), "book.pdf", Limits())
    assert result.pages == 200 and result.page_texts is not None
    assert len(result.page_texts) == 200
    assert "pageword150" in result.page_texts[149]
    assert "pageword150" not in result.page_texts[148]
    assert result.title == "A book of 200 pages"
    assert time.monotonic() - started < 60


def test_odt_and_epub_are_extracted_with_their_metadata() -> None:
    odt = extract_in_child(
        C.odt(["The ocelot sleeps.", "Second paragraph."], title="Cats", author="Ann"),
        "x.bin",
        Limits(),
    )
    assert odt.content_type == detect.ODT
    assert (odt.title, odt.author) == ("Cats", "Ann")
    assert odt.content.splitlines() == ["Cats", "The ocelot sleeps.", "Second paragraph."]
    epub = extract_in_child(
        C.epub(["First chapter: narwhal.", "Second: axolotl."], title="Sea", author="Bo"),
        None,
        Limits(),
    )
    assert epub.content_type == detect.EPUB
    assert (epub.title, epub.author, epub.language) == ("Sea", "Bo", "en")
    assert epub.content.index("narwhal") < epub.content.index("axolotl")


def test_formats_are_detected_from_content_not_the_name() -> None:
    assert detect.detect(C.long_pdf(1), "photo.jpg") == detect.PDF
    assert detect.detect(C.docx(["x"], title="t", author="a"), "a.pdf") == detect.DOCX
    assert detect.detect(C.zip_bomb_docx(2 * 1024 * 1024), "a.txt") == detect.DOCX
    assert detect.detect(C.latin1_text(), "a.pdf") == detect.TEXT
    assert detect.detect(C.markdown_doc(), "deploy.md") == detect.MARKDOWN
    assert detect.detect(C.html_doc(), "page.txt") == detect.HTML
    with pytest.raises(ExtractionError, match="unsupported file type"):
        extract(C.long_pdf(1).replace(b"%PDF-", b"\x7fELF\x02", 1), "a.pdf")


def test_html_main_content_leaves_navigation_out() -> None:
    # The repo's README rendered by markdown-it, wrapped in a page with navigation around.
    from markdown_it import MarkdownIt

    body = MarkdownIt().render((C.REPO / "README.md").read_text())
    page = (
        "<!DOCTYPE html><html lang='en'><head><title>Docuseek</title></head><body>"
        "<nav><a href='/'>Home navlink</a></nav><header>Site banner</header>"
        f"<main>{body}</main><footer>Footer boilerplate</footer></body></html>"
    )
    result = extract(page.encode(), None)
    assert result.title == "Docuseek" and result.language == "en"
    assert "Self-hosted document search" in result.content
    for noise in ("navlink", "Site banner", "Footer boilerplate"):
        assert noise not in result.content


def test_limits_stop_the_child_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(ExtractionError, match="longer than 0.05 s"):
        extract_in_child(C.long_pdf(200), None, Limits(timeout_seconds=0.05))
    with pytest.raises(ExtractionError, match="larger than 4096 bytes"):
        extract_in_child(C.long_pdf(200), None, Limits(max_output_bytes=4096))
    with pytest.raises(ExtractionError, match="zip bomb"):
        extract_in_child(C.zip_bomb_docx(), "report.docx", Limits())


def test_the_cpu_limit_stops_a_long_extraction() -> None:
    # 3,000 pages take pypdf about 2.5 CPU seconds on this machine (600: 0.6 s).
    with pytest.raises(ExtractionError, match="more than 1 CPU seconds"):
        extract_in_child(C.long_pdf(3000), None, Limits(cpu_seconds=1))


def test_the_child_removes_its_temporary_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    extract_in_child(C.long_pdf(2), None, Limits())
    with pytest.raises(ExtractionError):
        extract_in_child(C.encrypted_pdf(), None, Limits())
    assert list(tmp_path.iterdir()) == []


def test_the_child_has_no_network_and_its_limits() -> None:
    code = (
        "import resource, socket\n"
        "from docuseek.files.sandbox import Limits, _limit_self\n"
        "_limit_self(Limits(cpu_seconds=7, memory_bytes=512 * 2**20, max_output_bytes=2**20))\n"
        "from resource import getrlimit as g, RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE\n"
        "print(g(RLIMIT_CPU)[0], g(RLIMIT_AS)[0], g(RLIMIT_FSIZE)[0])\n"
        "try:\n    socket.socket()\nexcept PermissionError as exc:\n    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [f"7 {512 * 2**20} {2**20}", "the extraction sandbox has no network"]


def test_running_out_of_address_space_fails_with_a_reason() -> None:
    # 40 MiB is too little for pypdf and a 200-page PDF (60 MiB is enough on this machine).
    with pytest.raises(ExtractionError, match="more than 40 MiB of memory"):
        extract_in_child(C.long_pdf(200), None, Limits(memory_bytes=40 * 2**20))
