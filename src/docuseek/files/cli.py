"""The command-line side of `docuseek import --files DIR` (cli.py only adds the option)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from docuseek.files.importer import api_client, failed_files, import_files, wait_for_tasks
from docuseek.settings import Settings


def api_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return os.environ.get("DOCUSEEK_URL") or f"http://{host}:{settings.port}"


def api_key(settings: Settings) -> str | None:
    """DOCUSEEK_API_KEY, else the admin key of the environment, else embedded mode's file."""
    if os.environ.get("DOCUSEEK_API_KEY"):
        return os.environ["DOCUSEEK_API_KEY"]
    if settings.admin_key is not None:
        return settings.admin_key.get_secret_value()
    key_file = settings.data_dir / "admin.key"
    return key_file.read_text().strip() if key_file.exists() else None


def import_folder(
    collection: str,
    root: Path,
    wait: bool,
    settings: Settings,
    console: Any,
    progress_factory: Callable[[], Any],
) -> None:
    key = api_key(settings)
    if key is None:
        console.print("[red]no API key: set DOCUSEEK_API_KEY[/]")
        raise typer.Exit(2)
    started = time.perf_counter()
    with api_client(api_url(settings), key) as client:
        with progress_factory() as progress:
            bar = progress.add_task(f"uploading {root}", total=None)
            try:
                summary = import_files(
                    client,
                    collection,
                    root,
                    on_file=lambda done, total: progress.update(bar, completed=done, total=total),
                )
            except (RuntimeError, OSError) as exc:
                console.print(f"[red]import stopped:[/] {exc}")
                raise typer.Exit(1) from None
        failed: dict[str, str] = {}
        if wait and summary.task_ids:
            wait_for_tasks(client, summary.task_ids)
            failed = failed_files(client, collection, summary.ids)
    elapsed = time.perf_counter() - started
    console.print(
        f"uploaded {summary.files} files ({summary.bytes / 1e6:.1f} MB) in"
        f" {len(summary.task_ids)} requests ({elapsed:.1f} s)"
    )
    for path, reason in summary.refused.items():
        console.print(f"[yellow]refused {path}:[/] {reason}")
    for path, reason in failed.items():
        console.print(f"[yellow]could not extract {path}:[/] {reason}")
    if summary.refused or failed:
        raise typer.Exit(1)
