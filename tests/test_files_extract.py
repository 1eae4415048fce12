"""Extraction in the sandbox child, without a database: formats, limits, hostile files."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import structlog

from docuseek.files import detect, sandbox
from docuseek.files.extract import ExtractionError, extract
from docuseek.files.sandbox import NETNS, SECCOMP, SOCKET_GUARD, Limits, extract_in_child
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
        "from docuseek.files.sandbox import Limits, _isolate_network, _limit_self\n"
        "_isolate_network([])\n"
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


# Run in a child as the sandbox runs: the isolation layers asked for, then a TMPDIR file
# written and read back, then raw connects that bypass the Python-level guard: through the
# C `_socket` module and through libc's socket(2) and connect(2).
RAW_CONNECT = """
import ctypes, socket, sys, tempfile, _socket
from docuseek.files.sandbox import _isolate_network
port, layers = int(sys.argv[1]), [x for x in sys.argv[2].split(",") if x]
print(",".join(_isolate_network(layers)))
with tempfile.TemporaryFile() as f:
    f.write(b"scratch")
    f.seek(0)
    print(f.read().decode())
try:
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    s.connect(("127.0.0.1", port))
    print("_socket connected")
except OSError as exc:
    print("_socket", exc.errno)
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
if fd < 0:
    print("libc socket", ctypes.get_errno())
else:
    address = socket.AF_INET.to_bytes(2, sys.byteorder) + port.to_bytes(2, "big")
    address += bytes([127, 0, 0, 1]) + bytes(8)
    if libc.connect(fd, address, len(address)) == 0:
        print("libc connected")
    else:
        print("libc connect", ctypes.get_errno())
"""


def raw_connects(layers: list[str], *wrap: str) -> tuple[list[str], int]:
    """What RAW_CONNECT printed under `layers` (started through `wrap`), and how many
    connections a listening loopback port of this test accepted meanwhile."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        out = subprocess.run(
            [*wrap, sys.executable, "-c", RAW_CONNECT, str(port), ",".join(layers)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "TMPDIR": tempfile.mkdtemp()},
        ).stdout.splitlines()
        listener.setblocking(False)
        accepted = 0
        while True:
            try:
                listener.accept()[0].close()
            except BlockingIOError:
                return out, accepted
            accepted += 1


def test_the_python_guard_alone_does_not_stop_a_raw_connect() -> None:
    # The control for the tests below: the listener and both raw connects do work.
    out, accepted = raw_connects([])
    assert out == ["socket guard", "scratch", "_socket connected", "libc connected"]
    assert accepted == 2


@pytest.mark.skipif(os.geteuid() != 0, reason="unshare(CLONE_NEWNET) directly needs root")
def test_a_network_namespace_stops_raw_connects() -> None:
    out, accepted = raw_connects([NETNS])
    unreachable = str(errno.ENETUNREACH)
    assert out == [
        f"{NETNS},socket guard",
        "scratch",
        f"_socket {unreachable}",
        f"libc connect {unreachable}",
    ]
    assert accepted == 0


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"),
    reason="dropping CAP_SYS_ADMIN alone needs root and setpriv",
)
def test_without_cap_sys_admin_a_user_namespace_gives_the_network_namespace() -> None:
    # As the compose worker is (no CAP_SYS_ADMIN), but where user namespaces are allowed.
    out, accepted = raw_connects([NETNS], "setpriv", "--bounding-set", "-sys_admin")
    assert out[:2] == [f"{NETNS},socket guard", "scratch"]
    assert out[2:] == [f"_socket {errno.ENETUNREACH}", f"libc connect {errno.ENETUNREACH}"]
    assert accepted == 0


def test_the_seccomp_filter_stops_raw_connects() -> None:
    out, accepted = raw_connects([SECCOMP])
    assert out == [
        f"{SECCOMP},socket guard",
        "scratch",
        f"_socket {errno.EACCES}",
        f"libc socket {errno.EACCES}",
    ]
    assert accepted == 0


def test_the_extraction_child_reports_its_isolation_once() -> None:
    sandbox._isolation_logged = None
    with structlog.testing.capture_logs() as logs:
        for _ in range(2):
            result = extract_in_child(C.long_pdf(2), "two.pdf", Limits())
            assert result.pages == 2
    isolation = [e for e in logs if "network isolation" in e["event"]]
    assert len(isolation) == 1, logs
    layers = isolation[0]["layers"]
    assert layers[-2:] == [SECCOMP, SOCKET_GUARD], layers
    if os.geteuid() == 0:  # root may always make a network namespace
        assert layers == [NETNS, SECCOMP, SOCKET_GUARD] and isolation[0]["log_level"] == "info"


def test_isolation_without_a_namespace_is_logged_as_a_warning_once() -> None:
    # What a child reports in the compose worker (no unshare there): the parent's side.
    sandbox._isolation_logged = None
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            sandbox._note_isolation([SECCOMP, SOCKET_GUARD])
    assert [(e["log_level"], e["layers"]) for e in logs] == [("warning", [SECCOMP, SOCKET_GUARD])]
    assert "seccomp profile" in logs[0]["event"]
