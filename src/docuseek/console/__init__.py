"""The web console and the offline API docs page: static files served by the api."""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
