"""Extraction in a child process with limits.

The parent (`extract_in_child`, called by the worker) writes the file's bytes to a fresh
directory under its TMPDIR and starts `python -m docuseek.files.sandbox` there, with that
directory as the child's only TMPDIR, an environment without the worker's (so no database
URL or password), and stdin/stdout bound to files in it. The child lowers its own limits
before it imports a parser — CPU seconds, address space, size of any file it writes (so
of its output too), no core dumps — refuses to open sockets, extracts, and prints JSON:
`{"ok": {...}}` or `{"error": "reason"}`. A wall-clock timeout kills it otherwise.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

from docuseek.files.extract import Extracted, ExtractionError


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 60
    memory_bytes: int = 1024 * 1024 * 1024
    timeout_seconds: float = 120.0
    max_output_bytes: int = 64 * 1024 * 1024


def extract_in_child(data: bytes, filename: str | None, limits: Limits) -> Extracted:
    """Extract `data` in a limited child process; ExtractionError says why it failed."""
    workdir = tempfile.mkdtemp(prefix="docuseek-extract-")
    try:
        input_path = os.path.join(workdir, "input")
        with open(input_path, "wb") as f:
            f.write(data)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "TMPDIR": workdir,
            "HOME": workdir,
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
        }
        args = [
            sys.executable,
            "-m",
            "docuseek.files.sandbox",
            json.dumps({"filename": filename, "limits": limits.__dict__}),
        ]
        with (
            open(input_path, "rb") as stdin,
            open(os.path.join(workdir, "output"), "w+b") as stdout,
            open(os.path.join(workdir, "errors"), "w+b") as stderr,
        ):
            try:
                proc = subprocess.run(
                    args,
                    stdin=stdin,
                    stdout=stdout,
                    stderr=stderr,
                    env=env,
                    cwd=workdir,
                    timeout=limits.timeout_seconds,
                    start_new_session=True,  # a signal to the worker's group spares it
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise ExtractionError(
                    f"extraction took longer than {limits.timeout_seconds:g} s and was"
                    " stopped: the file is too large or too complex"
                ) from None
            stdout.seek(0)
            output = stdout.read(limits.max_output_bytes + 1)
            stderr.seek(0)
            errors = stderr.read(4000).decode("utf-8", "replace")
        return _outcome(proc.returncode, output, errors, limits)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _outcome(returncode: int, output: bytes, errors: str, limits: Limits) -> Extracted:
    if returncode == -signal.SIGXCPU:
        raise ExtractionError(
            f"extraction used more than {limits.cpu_seconds} CPU seconds and was stopped:"
            " the file is too large or too complex"
        )
    if returncode == -signal.SIGKILL:
        raise ExtractionError(
            f"extraction was killed: it used more than {limits.cpu_seconds} CPU seconds or"
            " ran out of memory; the file is too large or too complex"
        )
    # Python ignores SIGXFSZ: a write past RLIMIT_FSIZE fails with EFBIG instead.
    if (
        returncode == -signal.SIGXFSZ
        or len(output) > limits.max_output_bytes
        or "[Errno 27]" in errors
    ):
        raise ExtractionError(_too_large(limits))
    try:
        result = json.loads(output)
    except ValueError:
        last = errors.strip().splitlines()[-1:] or [f"exit status {returncode}"]
        raise ExtractionError(f"extraction failed: {last[0][:500]}") from None
    if "error" in result:
        raise ExtractionError(str(result["error"]))
    return Extracted(**result["ok"])


# -- the child ---------------------------------------------------------------------------


def _limit_self(limits: Limits) -> None:
    cpu = limits.cpu_seconds
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 2))  # SIGXCPU, then SIGKILL
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    size = limits.max_output_bytes
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    import socket

    class NoSocket(socket.socket):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise PermissionError("the extraction sandbox has no network")

    socket.socket = NoSocket  # type: ignore[misc]


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    limits = Limits(**spec["limits"])
    _limit_self(limits)
    data = sys.stdin.buffer.read()
    result: dict[str, Any]
    try:
        from docuseek.files.extract import extract

        result = {"ok": extract(data, spec.get("filename")).as_json()}
    except ExtractionError as exc:
        result = {"error": str(exc)}
    except MemoryError:
        result = {
            "error": f"extraction needed more than {limits.memory_bytes // (1024 * 1024)} MiB"
            " of memory and was stopped: the file is too large or too complex"
        }
    except RecursionError:
        result = {"error": "the file is nested too deeply to extract"}
    except Exception as exc:  # a parser's own bug on a hostile file: this file fails alone
        result = {"error": f"could not extract the file: {type(exc).__name__}: {exc}"[:1000]}
    output = json.dumps(result, ensure_ascii=False).encode()
    if len(output) > limits.max_output_bytes:
        output = json.dumps({"error": _too_large(limits)}).encode()
    sys.stdout.buffer.write(output)
    sys.stdout.flush()
    return 0


def _too_large(limits: Limits) -> str:
    return (
        f"the extracted text is larger than {limits.max_output_bytes} bytes"
        " (DOCUSEEK_EXTRACT_MAX_OUTPUT_BYTES)"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv))
