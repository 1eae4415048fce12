"""Free loopback ports, for the tests and the benchmark alike (standard library only, so
the benchmark can import it without the test dependencies)."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
