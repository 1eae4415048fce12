"""The `docuseek` command line."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from docuseek import __version__
from docuseek.settings import Settings, get_settings

app = typer.Typer(help="Docuseek: self-hosted document search.", no_args_is_help=True)
console = Console(stderr=True)


def _setup(settings: Settings) -> None:
    from docuseek.logging_setup import configure

    configure(settings.log_level, settings.log_json)


def _require_database(settings: Settings) -> str:
    if not settings.database_url:
        console.print(
            "[red]DATABASE_URL is not set.[/] (`docuseek serve` runs an embedded database)"
        )
        raise typer.Exit(2)
    return settings.database_url


def _engine_and_backend(settings: Settings, role: str) -> tuple[Any, Any]:
    from docuseek.db import make_engine
    from docuseek.search.factory import make_backend

    engine = make_engine(_require_database(settings), application_name=f"docuseek-{role}")
    return engine, make_backend(settings, engine)


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


@app.command()
def migrate() -> None:
    """Apply database migrations (Alembic) to DATABASE_URL."""
    from docuseek.migrate import upgrade

    settings = get_settings()
    _setup(settings)
    upgrade(_require_database(settings))
    console.print("migrations applied")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind host (DOCUSEEK_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Bind port (DOCUSEEK_PORT)")] = None,
) -> None:
    """Embedded mode: api + worker in one process (embedded PostgreSQL if DATABASE_URL is unset)."""
    import uvicorn

    from docuseek.api.app import create_app
    from docuseek.db import make_engine
    from docuseek.embedded import ensure_admin_key, start_postgres, stop_postgres
    from docuseek.migrate import upgrade
    from docuseek.search.factory import make_backend
    from docuseek.worker import WorkerPool

    settings = get_settings()
    _setup(settings)
    server = None
    if not settings.database_url:
        console.print(f"starting embedded PostgreSQL in {settings.data_dir / 'postgres'}")
        server, url = start_postgres(settings.data_dir)
        settings = settings.model_copy(update={"database_url": url})
    assert settings.database_url
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    if settings.admin_key is None:
        key, key_file = ensure_admin_key(engine, settings.data_dir)
        if key:
            console.print(
                f"\n[bold]Admin API key (shown once; also saved to {key_file}, mode 600):[/]\n"
                f"  {key}\n"
            )
        else:
            console.print(f"admin key: see {key_file}")
    backend = make_backend(settings, engine)
    pool = WorkerPool(engine, backend, settings)
    threads = pool.start()
    application = create_app(settings, engine, backend)
    # uvicorn re-raises the signal it stopped on once it has shut down; with SIGTERM's
    # default action that killed the process before the `finally` below, leaving the
    # embedded PostgreSQL running. As an exception, the shutdown below runs.
    signal.signal(signal.SIGTERM, _raise_system_exit)
    try:
        uvicorn.run(
            application,
            host=host or settings.host,
            port=port or settings.port,
            log_level=settings.log_level.lower(),
        )
    finally:
        pool.stop()
        for thread in threads:
            thread.join(timeout=30)
        if server is not None:
            stop_postgres(server)


def _raise_system_exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind host (DOCUSEEK_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Bind port (DOCUSEEK_PORT)")] = None,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the HTTP API (needs DATABASE_URL; run `docuseek worker` beside it)."""
    import uvicorn

    settings = get_settings()
    _setup(settings)
    _require_database(settings)
    uvicorn.run(
        "docuseek.api.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
    )


@app.command()
def worker(
    until_empty: Annotated[bool, typer.Option(help="Exit when the queue is empty")] = False,
) -> None:
    """Run the indexing worker. SIGTERM finishes the current batch, then exits."""
    from docuseek.metrics import register_queue_collector
    from docuseek.worker import WorkerPool
    from docuseek.worker_http import start_metrics_server

    settings = get_settings()
    _setup(settings)
    engine, backend = _engine_and_backend(settings, "worker")
    register_queue_collector(engine)
    runner = WorkerPool(engine, backend, settings)
    if settings.worker_metrics_port:
        start_metrics_server(settings.worker_metrics_host, settings.worker_metrics_port)

    def on_signal(signum: int, _frame: Any) -> None:
        runner.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    runner.run(until_empty=until_empty)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON array or NDJSON")],
    collection: Annotated[str, typer.Option(help="Target collection (must exist)")],
    batch_size: Annotated[int, typer.Option(min=1, max=100_000)] = 1000,
    wait: Annotated[bool, typer.Option(help="Wait until every task has finished")] = False,
) -> None:
    """Stream documents from a file into a collection, with progress and a summary."""
    from docuseek.db import make_engine
    from docuseek.errors import DocuseekError
    from docuseek.importer import import_file

    settings = get_settings()
    _setup(settings)
    engine = make_engine(_require_database(settings))
    started = time.perf_counter()
    with _progress() as progress:
        bar = progress.add_task(f"importing {file.name}", total=None)
        try:
            summary = import_file(
                engine, collection, file, batch_size, on_batch=lambda n: progress.advance(bar, n)
            )
        except DocuseekError as exc:
            console.print(f"[red]import stopped:[/] {exc.message}")
            raise typer.Exit(1) from None
    if wait and summary.task_ids:
        _wait_for_tasks(engine, summary.task_ids)
    elapsed = time.perf_counter() - started
    rate = summary.documents / elapsed if elapsed else 0.0
    console.print(
        f"imported {summary.documents} documents in {summary.batches} batches"
        f" ({elapsed:.1f} s, {rate:.0f} docs/s)"
    )


def _wait_for_tasks(engine: Any, task_ids: list[int]) -> None:
    from sqlalchemy import text

    with _progress() as progress:
        bar = progress.add_task("indexing", total=len(task_ids))
        while True:
            with engine.connect() as conn:
                done, failed = conn.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE status IN ('succeeded','failed')),"
                        " count(*) FILTER (WHERE status = 'failed')"
                        " FROM tasks WHERE id = ANY(CAST(:ids AS bigint[]))"
                    ),
                    {"ids": task_ids},
                ).one()
            progress.update(bar, completed=done)
            if done >= len(task_ids):
                break
            time.sleep(0.5)
    if failed:
        console.print(f"[yellow]{failed} task(s) failed; see GET /tasks?status=failed[/]")


def _bar_updater(progress: Progress, bar: Any) -> Callable[[int, int], None]:
    return lambda done, total: progress.update(bar, completed=done, total=total)


@app.command()
def reindex(
    collection: Annotated[str | None, typer.Option(help="Collection to rebuild")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Rebuild every collection")] = False,
) -> None:
    """Rebuild the search index from PostgreSQL (new generation, then an atomic switch)."""
    from docuseek import collections as collections_mod
    from docuseek.errors import DocuseekError
    from docuseek.reindex import reindex as run_reindex

    settings = get_settings()
    _setup(settings)
    if not collection and not all_:
        console.print("[red]give --collection NAME or --all[/]")
        raise typer.Exit(2)
    engine, backend = _engine_and_backend(settings, "reindex")
    if all_:
        with engine.connect() as conn:
            names = [c.name for c in collections_mod.list_all(conn)]
    else:
        names = [collection or ""]
    for name in names:
        with _progress() as progress:
            bar = progress.add_task(f"reindexing {name}", total=None)
            try:
                summary = run_reindex(engine, backend, name, progress=_bar_updater(progress, bar))
            except DocuseekError as exc:
                console.print(f"[red]reindex of {name} failed:[/] {exc.message}")
                raise typer.Exit(1) from None
        console.print(
            f"{name}: generation {summary.generation} live, {summary.documents} documents"
            f" (+{summary.caught_up} caught up) in {summary.seconds:.1f} s"
        )


def settings_markdown() -> str:
    """The settings table for the README (a test keeps the README equal to this)."""
    lines = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias if isinstance(info.validation_alias, str) else name.upper()
        default = "" if info.default is None else f"`{info.default}`"
        lines.append(f"| `{alias}` | {default} | {info.description or ''} |")
    return "\n".join(lines) + "\n"


@app.command()
def reconcile(
    collection: Annotated[str, typer.Option(help="Collection to check")],
    repair: Annotated[bool, typer.Option(help="Queue the fixes through the outbox")] = False,
    sample: Annotated[int, typer.Option(min=0, help="Ids shown per kind of drift")] = 10,
) -> None:
    """Compare ids and versions in PostgreSQL with the search index; exit 1 on unrepaired drift."""
    from docuseek.errors import DocuseekError
    from docuseek.reconcile import reconcile as run_reconcile

    settings = get_settings()
    _setup(settings)
    engine, backend = _engine_and_backend(settings, "reconcile")
    try:
        report = run_reconcile(engine, backend, collection, repair=repair)
    except DocuseekError as exc:
        console.print(f"[red]reconcile of {collection} failed:[/] {exc.message}")
        raise typer.Exit(1) from None
    drift = report.drift
    console.print(
        f"{collection} (generation {report.generation}): {report.documents} documents in"
        f" PostgreSQL, {report.indexed} indexed, {report.in_flight} in flight;"
        f" drift {drift.total}: {len(drift.missing)} missing, {len(drift.stale)} stale,"
        f" {len(drift.extra)} extra"
    )
    for kind, ids in (("missing", drift.missing), ("stale", drift.stale), ("extra", drift.extra)):
        if ids and sample:
            console.print(f"  {kind}: {', '.join(ids[:sample])}{' …' if len(ids) > sample else ''}")
    if repair and drift.total:
        console.print(f"queued {report.queued} fixes; the worker applies them")
    elif drift.total:
        raise typer.Exit(1)


@app.command("settings")
def show_settings(
    markdown: Annotated[bool, typer.Option(help="Print the README's Markdown table")] = False,
) -> None:
    """List every setting with its environment variable and default."""
    if markdown:
        print(settings_markdown(), end="")
        return
    table = Table("variable", "default", "description")
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias if isinstance(info.validation_alias, str) else name.upper()
        table.add_row(
            alias, "" if info.default is None else str(info.default), info.description or ""
        )
    Console().print(table)


def main() -> None:  # pragma: no cover
    sys.exit(app())
