"""Uploaded files on every backend (see conftest.py): the extracted text is what gets
indexed, a PDF hit lists its pages, a file that fails is still findable by its name."""

from __future__ import annotations

from tests import files_corpus as C
from tests.helpers import Service
from tests.test_files import FILE_FIELDS, accepted


def test_extracted_files_are_searchable_with_pages(service: Service) -> None:
    service.create_collection("docs", FILE_FIELDS)
    task_id = accepted(
        service,
        "docs",
        [
            ("a.pdf", C.pdf(["Front matter.", "Second page: the capybara."])),
            ("b.docx", C.docx(["A docx about a wombat."], title="Wombats", author="W")),
            ("c.pdf", C.encrypted_pdf()),
        ],
        [{"id": "a"}, {"id": "b"}, {"id": "c"}],
    )
    service.drain()
    task = service.task(task_id)
    assert (task["details"]["indexed"], task["details"]["failed"]) == (2, 1)
    hits = service.search("docs", q="capybara")["hits"]
    assert [(h["id"], h.get("pages")) for h in hits] == [("a", [2])]
    hits = service.search("docs", q="wombat", filter="author:W")["hits"]
    assert [h["id"] for h in hits] == ["b"]
    assert [h["id"] for h in service.search("docs", filter="filename:c.pdf")["hits"]] == ["c"]
