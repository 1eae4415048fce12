"""The stack test's file step: upload a two-page PDF through the api's published port and
find a word of its second page, proving that extraction works in the production worker
(read-only root, tmpfs /tmp and /var/tmp owned by uid 1000), and download the original back.

The PDF is written by reportlab (the test extra), so it is a real PDF from a real writer.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from typing import Any

import httpx
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

FIELDS = {
    "title": {"type": "text", "weight": "A"},
    "content": {"type": "text"},
    "pages": {"type": "integer"},
    "content_type": {"type": "keyword", "facet": True},
    "filename": {"type": "keyword"},
}
PAGE_TWO_WORD = "quetzalcoatl"


def two_page_pdf() -> bytes:
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4)
    pdf.setTitle("Stack file check")
    pdf.drawString(72, 760, "The first page talks about harbours and cranes.")
    pdf.showPage()
    pdf.drawString(72, 760, f"The second page names the feathered serpent {PAGE_TWO_WORD}.")
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def fail(message: str) -> None:
    sys.exit(f"FAIL: {message}")


def wait_task(api: httpx.Client, task_id: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task: dict[str, Any] = api.get(f"/tasks/{task_id}").json()
        if task["status"] in ("succeeded", "failed"):
            return task
        time.sleep(0.5)
    fail(f"task {task_id} not finished after {timeout} s")
    raise AssertionError  # unreachable: fail exits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--api", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--collection", default="stackfiles")
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()
    headers = {"Authorization": f"Bearer {args.key}"}
    with httpx.Client(base_url=args.api.rstrip("/"), headers=headers, timeout=60) as api:
        put = api.put(f"/collections/{args.collection}", json={"fields": FIELDS})
        if put.status_code not in (200, 201):
            fail(f"PUT collection: {put.status_code} {put.text}")
        original = two_page_pdf()
        posted = api.post(
            f"/collections/{args.collection}/files",
            files={"file": ("serpent.pdf", original, "application/pdf")},
            data={"fields": '[{"id": "serpent"}]'},
        )
        if posted.status_code != 202:
            fail(f"upload: {posted.status_code} {posted.text}")
        task = wait_task(api, posted.json()["task_id"], args.timeout)
        if task["status"] != "succeeded":
            fail(f"extraction task {task['status']}: {task.get('error')}")
        result = api.get(
            f"/collections/{args.collection}/search", params={"q": PAGE_TWO_WORD}
        ).json()
        hits = result["hits"]
        if [h["id"] for h in hits] != ["serpent"]:
            fail(f"search {PAGE_TWO_WORD!r}: hits {[h['id'] for h in hits]}")
        if hits[0].get("pages") != [2]:
            fail(f"search {PAGE_TWO_WORD!r}: pages {hits[0].get('pages')}, expected [2]")
        if hits[0]["document"].get("pages") != 2:
            fail(f"extracted page count {hits[0]['document'].get('pages')}, expected 2")
        back = api.get(f"/collections/{args.collection}/documents/serpent/file")
        if back.content != original or back.headers["content-type"] != "application/pdf":
            fail("the downloaded original differs from the uploaded bytes")
    print(
        f"files: a {len(original)}-byte PDF extracted by the worker; {PAGE_TWO_WORD!r} found"
        " on page 2; the original downloads byte-identical"
    )


if __name__ == "__main__":
    main()
