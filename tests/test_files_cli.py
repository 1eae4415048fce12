"""`docuseek import --files DIR` as users run it: a real api process, a real worker."""

from __future__ import annotations

import os
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import files_corpus as C
from tests.helpers import ADMIN_KEY, DOCUSEEK_BIN, Service, WorkerProcess, free_port, wait_for
from tests.test_files import FILE_FIELDS


@pytest.fixture
def api_url(database_url: str) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DOCUSEEK_ADMIN_KEY": ADMIN_KEY,
        "DOCUSEEK_PORT": str(port),
        "SEARCH_BACKEND": "postgres",
    }
    proc = subprocess.Popen(
        [DOCUSEEK_BIN, "api"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    try:
        wait_for(up, 60, "docuseek api")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_import_files_over_http_with_wait(
    service: Service,
    database_url: str,
    api_url: str,
    tmp_path: Path,
    workers: list[WorkerProcess],
) -> None:
    service.create_collection("docs", FILE_FIELDS)
    workers.append(WorkerProcess(database_url, batch=100))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "report.pdf").write_bytes(C.pdf(["Intro.", "The okapi section."]))
    (tmp_path / "locked.pdf").write_bytes(C.encrypted_pdf())
    env = {**os.environ, "DOCUSEEK_URL": api_url, "DOCUSEEK_API_KEY": ADMIN_KEY}
    done = subprocess.run(
        [DOCUSEEK_BIN, "import", "--files", str(tmp_path), "--collection", "docs", "--wait"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output  # one file failed, and the command says so
    assert "uploaded 2 files" in output
    assert "could not extract locked.pdf: encrypted PDF: supply a password-free copy" in output
    hits = service.search("docs", q="okapi")["hits"]
    assert [(h["id"], h["pages"]) for h in hits] == [("sub/report.pdf", [2])]
