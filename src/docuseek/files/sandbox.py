"""Extraction in a child process with limits.

The parent (`extract_in_child`, called by the worker) writes the file's bytes to a fresh
directory under its TMPDIR and starts `python -m docuseek.files.sandbox` there, with that
directory as the child's only TMPDIR, an environment without the worker's (so no database
URL or password), and stdin/stdout bound to files in it. The child lowers its own limits
before it imports a parser — CPU seconds, address space, size of any file it writes (so
of its output too), no core dumps — cuts itself off from the network (below), extracts,
and prints JSON: `{"ok": {...}}` or `{"error": "reason"}`, with the isolation it got. A
wall-clock timeout kills it otherwise.

Network isolation, each layer where the OS allows it: a new network namespace (unshare(2):
as root, or inside a new user namespace when the kernel lets unprivileged users make one)
leaves the child only a loopback that is down; a seccomp filter (libseccomp) makes every
socket(2) fail with EACCES; and `socket.socket` refuses in Python. The worker logs which
layers are in effect the first time a child reports them.
"""

from __future__ import annotations

import ctypes
import errno
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

NETNS = "network namespace"
SECCOMP = "seccomp"
SOCKET_GUARD = "socket guard"
ISOLATION = (NETNS, SECCOMP)


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
    _note_isolation(result.get("isolation"))
    if "error" in result:
        raise ExtractionError(str(result["error"]))
    return Extracted(**result["ok"])


_isolation_logged: list[str] | None = None


def _note_isolation(layers: Any) -> None:
    """Log the child's network isolation once per worker process (and again if it changes)."""
    global _isolation_logged
    if not isinstance(layers, list) or layers == _isolation_logged:
        return
    _isolation_logged = layers
    # Imported here: the child imports this module too, and structlog (with rich) would
    # add about 100 ms of CPU to every file's extraction.
    import structlog

    log = structlog.get_logger("docuseek.files")
    if NETNS in layers:
        log.info("extraction child network isolation", layers=layers)
    else:
        log.warning(
            "extraction child network isolation without a network namespace: unshare(2) is"
            " not permitted here (no CAP_SYS_ADMIN and no user namespace for this user, or"
            " a seccomp profile such as a container engine's refuses it)",
            layers=layers,
        )


# -- the child ---------------------------------------------------------------------------


def _limit_self(limits: Limits) -> None:
    cpu = limits.cpu_seconds
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 2))  # SIGXCPU, then SIGKILL
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    size = limits.max_output_bytes
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _isolate_network(layers: tuple[str, ...] | list[str] = ISOLATION) -> list[str]:
    """Cut this process off from the network with each of `layers` the OS permits, and the
    Python-level socket guard always; returns the layers in effect."""
    in_effect = []
    if NETNS in layers and _unshare_network():
        in_effect.append(NETNS)
    if SECCOMP in layers and _deny_sockets():
        in_effect.append(SECCOMP)
    _guard_sockets()
    in_effect.append(SOCKET_GUARD)
    return in_effect


_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000


def _unshare_network() -> bool:
    """Move into a new network namespace (only a loopback, down). Root may do that directly;
    anyone else through a new user namespace, where the kernel allows it."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(_CLONE_NEWNET) == 0:
        return True
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) != 0:
        return False
    # The user and group mapped to themselves, so TMPDIR's files show as the child's own.
    maps = (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1"))
    try:
        for name, line in maps:
            with open(f"/proc/self/{name}", "w") as f:
                f.write(line)
    except OSError:
        pass  # unmapped, the kernel still lets it use its files, shown as the overflow user
    return True


class _ArgCmp(ctypes.Structure):
    """libseccomp's struct scmp_arg_cmp (unused: the rules match any arguments)."""

    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


_SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_ACT_ERRNO = 0x00050000
# socket(2) makes every kind of socket (a Unix one could reach a local database);
# io_uring could make sockets without it.
_DENIED_SYSCALLS = (b"socket", b"io_uring_setup")


def _deny_sockets() -> bool:
    """A seccomp filter (libseccomp, which handles the architecture checks) under which
    creating a socket fails with EACCES; False when libseccomp or seccomp is unavailable."""
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError:
        return False
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    ]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(_SCMP_ACT_ALLOW)
    if not ctx:
        return False
    try:
        deny = _SCMP_ACT_ERRNO | errno.EACCES
        for name in _DENIED_SYSCALLS:
            number = lib.seccomp_syscall_resolve_name(name)
            if number < 0:  # unknown to this libseccomp (an old one: io_uring)
                continue
            if lib.seccomp_rule_add_array(ctx, deny, number, 0, None) != 0:
                return False
        # libseccomp sets no_new_privs itself, which seccomp needs without CAP_SYS_ADMIN.
        return bool(lib.seccomp_load(ctx) == 0)
    finally:
        lib.seccomp_release(ctx)


def _guard_sockets() -> None:
    import socket

    class NoSocket(socket.socket):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise PermissionError("the extraction sandbox has no network")

    socket.socket = NoSocket  # type: ignore[misc]


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    limits = Limits(**spec["limits"])
    # First: no parser is imported before the network is gone.
    isolation = _isolate_network()
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
    result["isolation"] = isolation
    output = json.dumps(result, ensure_ascii=False).encode()
    if len(output) > limits.max_output_bytes:
        output = json.dumps({"error": _too_large(limits), "isolation": isolation}).encode()
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
