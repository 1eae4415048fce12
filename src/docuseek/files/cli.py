"""The command-line side of `docuseek import --files DIR` (cli.py only adds the option)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from docuseek.files.importer import api_client, failed_files, import_files, wait_for_tasks


def import_folder(
    collection: str,
    root: Path,
    wait: bool,
    url: str,
    key: str | None,
    console: Any,
    progress_factory: Callable[[], Any],
) -> None:
    if key is None:
        console.print("[red]no API key: set DOCUSEEK_API_KEY[/]")
        raise typer.Exit(2)
    started = time.perf_counter()
    with api_client(url, key) as client:
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
