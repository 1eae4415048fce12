"""Embedded mode's PostgreSQL: started from the wheel, tuned once for search."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text

from docuseek.db import normalize_url
from docuseek.embedded import _tune, start_postgres, tuning


def test_embedded_postgres_is_tuned_and_restarts_only_once() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="dsemb-"))  # short: unix socket path limit
    wanted = tuning()
    for _ in range(2):
        server, url = start_postgres(data_dir)
        engine = create_engine(normalize_url(url))
        try:
            with engine.connect() as conn:
                for name, value in wanted.items():
                    same = conn.execute(
                        text("SELECT pg_size_bytes(current_setting(:n)) = pg_size_bytes(:v)"),
                        {"n": name, "v": value},
                    ).scalar_one()
                    assert same, name
            # In place and recognised as such: a later start will not restart the server.
            assert _tune(server) is False
        finally:
            engine.dispose()
            server.cleanup()
    shutil.rmtree(data_dir, ignore_errors=True)
