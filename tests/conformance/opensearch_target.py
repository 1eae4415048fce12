"""Where the OpenSearch side of the tests runs: osmem-server, or a real cluster.

With OPENSEARCH_URL set (and optionally OPENSEARCH_USER, OPENSEARCH_PASSWORD,
OPENSEARCH_VERIFY_CERTS, OPENSEARCH_CA_FILE) the tests use that cluster; otherwise they
start osmem-server on a free loopback port. Every test gets its own index prefix, so
tests never see each other's indices, and its indices are dropped afterwards.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from osmem_server import OsmemServer

from docuseek.search.opensearch import OpenSearchBackend
from docuseek.settings import Settings
from tests.ports import free_port

_prefixes = itertools.count()


def start_osmem(port: int) -> OsmemServer:
    return OsmemServer.start(addr=f"127.0.0.1:{port}", japanese=False)


@dataclass
class OpenSearchTarget:
    settings: Settings

    @contextmanager
    def backend(self) -> Iterator[OpenSearchBackend]:
        prefix = f"dstest{os.getpid()}x{next(_prefixes)}"
        backend = OpenSearchBackend.from_settings(
            self.settings.model_copy(update={"opensearch_index_prefix": prefix})
        )
        try:
            yield backend
        finally:
            backend.client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
            backend.close()


@contextmanager
def opensearch_target() -> Iterator[OpenSearchTarget]:
    if os.environ.get("OPENSEARCH_URL"):
        yield OpenSearchTarget(Settings())  # the real cluster, from the environment
        return
    server = start_osmem(free_port())
    try:
        yield OpenSearchTarget(Settings(OPENSEARCH_URL=server.url))
    finally:
        server.close()
