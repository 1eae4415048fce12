"""The `docuseek` command line."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from docuseek import __version__
from docuseek.client import ApiError, Client, ClientError, ServerUnreachable, UploadProgress
from docuseek.errors import DocuseekError
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


@contextmanager
def _maintenance_database(settings: Settings) -> Iterator[Settings]:
    """The settings a maintenance command runs with: DATABASE_URL, else the embedded
    PostgreSQL of DOCUSEEK_DATA_DIR when `docuseek serve` made one (joined while serve
    runs it, else started for the command and stopped after it)."""
    if settings.database_url or not (settings.data_dir / "postgres").is_dir():
        yield settings
        return
    from docuseek.embedded import start_postgres, stop_postgres

    console.print(f"using the embedded PostgreSQL in {settings.data_dir / 'postgres'}")
    server, url = start_postgres(settings.data_dir)
    try:
        yield settings.model_copy(update={"database_url": url})
    finally:
        stop_postgres(server)


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
    bind_host, bind_port = host or settings.host, port or settings.port
    server_file = _write_server_file(settings.data_dir, bind_host, bind_port)
    try:
        uvicorn.run(
            application, host=bind_host, port=bind_port, log_level=settings.log_level.lower()
        )
    finally:
        server_file.unlink(missing_ok=True)
        pool.stop()
        for thread in threads:
            thread.join(timeout=30)
        if server is not None:
            stop_postgres(server)


def _write_server_file(data_dir: Path, host: str, port: int) -> Path:
    """Say where this server listens, so `docuseek import` finds it with no flags."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SERVER_FILE
    url = f"http://{_connectable_host(host)}:{port}"
    path.write_text(json.dumps({"url": url, "pid": os.getpid()}) + "\n")
    return path


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


SERVER_FILE = "server.json"  # in DOCUSEEK_DATA_DIR: where `docuseek serve` listens

UrlOption = Annotated[
    str | None,
    typer.Option(
        envvar="DOCUSEEK_URL",
        help="API URL (default: the `docuseek serve` of DOCUSEEK_DATA_DIR, else"
        " http://DOCUSEEK_HOST:DOCUSEEK_PORT)",
    ),
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        envvar="DOCUSEEK_API_KEY",
        help="API key (default: DOCUSEEK_ADMIN_KEY, else DOCUSEEK_DATA_DIR/admin.key)",
    ),
]


def _connectable_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def local_url(settings: Settings) -> str:
    """Where the local server listens: what `docuseek serve` wrote, else the settings."""
    try:
        url = json.loads((settings.data_dir / SERVER_FILE).read_text())["url"]
        if isinstance(url, str) and url:
            return url
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return f"http://{_connectable_host(settings.host)}:{settings.port}"


def local_key(settings: Settings) -> str | None:
    if settings.admin_key:
        return settings.admin_key.get_secret_value()
    try:
        return (settings.data_dir / "admin.key").read_text().strip() or None
    except OSError:
        return None


def _client(settings: Settings, url: str | None, key: str | None) -> Client:
    # httpx logs every request at INFO: a line per batch would bury the progress bar.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return Client(url or local_url(settings), key or local_key(settings))


class _CountingReader(io.RawIOBase):
    """A binary file that counts the bytes read from it (the progress bar's position)."""

    def __init__(self, raw: io.BufferedReader) -> None:
        self.raw = raw
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer)
        self.read_bytes += n or 0
        return n or 0


def _bytes_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[docs]} documents"),
        TimeRemainingColumn(),
        console=console,
    )


@app.command("import")
def import_(
    collection: Annotated[str, typer.Option(help="Target collection (must exist)")],
    file: Annotated[
        Path | None, typer.Argument(exists=True, dir_okay=False, help="JSON array or NDJSON")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=100_000)] = 1000,
    wait: Annotated[bool, typer.Option(help="Wait until every task has finished")] = False,
    url: UrlOption = None,
    key: KeyOption = None,
    gzip: Annotated[
        bool, typer.Option(help="Compress each batch (for a server across a slow network)")
    ] = False,
    files: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            file_okay=False,
            help="Upload every file under this folder (recursively) through the HTTP API",
        ),
    ] = None,
) -> None:
    """Send documents from a file (or the files of a folder) to a collection over HTTP, with
    progress and a summary."""
    if files is not None:
        from docuseek.files.cli import import_folder

        settings = get_settings()
        import_folder(
            collection,
            files,
            wait,
            url or local_url(settings),
            key or local_key(settings),
            console,
            _progress,
        )
        return
    if file is None:
        console.print("[red]give a FILE of documents, or --files DIR[/]")
        raise typer.Exit(2)
    from docuseek.importer import detect_ndjson, iter_json_array

    settings = get_settings()
    _setup(settings)
    size = file.stat().st_size
    started = time.perf_counter()
    acknowledged = UploadProgress(0, 0, 0, 0)
    task_ids: list[int] = []
    with _client(settings, url, key) as ds, file.open("rb") as raw:
        counted = _CountingReader(raw)
        with _bytes_progress() as progress:
            bar = progress.add_task(f"importing {file.name}", total=size, docs=0)

            def on_batch(done: UploadProgress) -> None:
                nonlocal acknowledged
                acknowledged = done
                task_ids.append(done.task_id)
                progress.update(bar, completed=counted.read_bytes, docs=done.documents)

            try:
                if detect_ndjson(file):
                    ds.add_ndjson(
                        collection,
                        io.BufferedReader(counted),
                        batch_size=batch_size,
                        on_progress=on_batch,
                        compress=gzip,
                    )
                else:
                    text_stream = io.TextIOWrapper(io.BufferedReader(counted), encoding="utf-8")
                    ds.add_documents(
                        collection,
                        iter_json_array(text_stream),
                        batch_size=batch_size,
                        on_progress=on_batch,
                        compress=gzip,
                    )
            except (ClientError, DocuseekError) as exc:
                progress.stop()
                _import_failed(exc, acknowledged, ds)
            except UnicodeDecodeError as exc:
                progress.stop()
                bad = exc.object[exc.start : exc.start + 1].hex()
                problem = f"{file.name} is not UTF-8 text ({exc.reason}: byte 0x{bad})"
                _import_failed(ValueError(problem), acknowledged, ds)
        elapsed = time.perf_counter() - started
        console.print(
            f"imported {acknowledged.documents} documents in {acknowledged.batches} batches"
            f" ({size / 1e6:.1f} MB in {elapsed:.1f} s:"
            f" {acknowledged.documents / max(elapsed, 1e-9):.0f} docs/s,"
            f" {size / 1e6 / max(elapsed, 1e-9):.1f} MB/s)"
        )
        if wait and task_ids:
            _wait_for_tasks(ds, task_ids)


def _import_failed(exc: Exception, acknowledged: UploadProgress, ds: Client) -> None:
    """Say what stopped the import and how far it got, then exit 1."""
    message = getattr(exc, "message", str(exc))
    if isinstance(exc, ApiError):
        first = exc.details[0] if isinstance(exc.details, list) and exc.details else {}
        lines = exc.file_lines
        if isinstance(first, dict) and "position" in first:
            position = int(first["position"])
            where = f"document #{acknowledged.documents + position} of the file"
            if lines and 0 <= position < len(lines):
                where += f" (line {lines[position]})"
            message = f"{where}: {first.get('message')}"
        elif isinstance(first, dict) and lines and exc.code == "malformed_body":
            # The server numbers the lines of the batch it got, which holds no blank lines.
            loc = first.get("loc") or []
            batch_line = str(loc[-1]).removeprefix("line ") if loc else ""
            if batch_line.isdigit() and 0 < int(batch_line) <= len(lines):
                message = f"line {lines[int(batch_line) - 1]} of the file: {first.get('msg')}"
        message = f"{exc.status} {exc.code}: {message}"
    elif isinstance(exc, ServerUnreachable):
        message += " (is the server running? give its address with --url or DOCUSEEK_URL)"
    console.print(f"[red]import stopped:[/] {message}")
    console.print(
        f"{acknowledged.documents} documents were acknowledged by the server (stored) in"
        f" {acknowledged.batches} batches before it stopped. Running the import again is"
        " safe: documents are upserted by id."
    )
    ds.close()
    raise typer.Exit(1)


def _wait_for_tasks(ds: Client, task_ids: list[int]) -> None:
    failed = 0
    with _progress() as progress:
        bar = progress.add_task("indexing", total=len(task_ids))
        for task_id in task_ids:
            task = ds.wait_for_task(task_id, timeout=24 * 3600, interval=0.2)
            failed += task["status"] == "failed"
            progress.advance(bar)
    if failed:
        console.print(f"[yellow]{failed} task(s) failed; see GET /tasks?status=failed[/]")


def _bar_updater(progress: Progress, bar: Any) -> Callable[[int, int], None]:
    return lambda done, total: progress.update(bar, completed=done, total=total)


@app.command()
def reindex(
    collection: Annotated[str | None, typer.Option(help="Collection to rebuild")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Rebuild every collection")] = False,
    local: Annotated[
        bool,
        typer.Option(help="Rebuild in this process against DATABASE_URL instead of via the API"),
    ] = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Rebuild the search index from PostgreSQL (new generation, then an atomic switch)."""
    settings = get_settings()
    _setup(settings)
    if not collection and not all_:
        console.print("[red]give --collection NAME or --all[/]")
        raise typer.Exit(2)
    if local:
        with _maintenance_database(settings) as settings:
            _reindex_local(settings, collection, all_)
    else:
        _reindex_api(settings, collection, all_, url, key)


def _reindex_api(
    settings: Settings, collection: str | None, all_: bool, url: str | None, key: str | None
) -> None:
    with _client(settings, url, key) as ds:
        try:
            names = [c["name"] for c in ds.list_collections()] if all_ else [collection or ""]
            for name in names:
                started = time.perf_counter()
                task_id = ds.reindex(name)["task_id"]
                with _progress() as progress:
                    bar = progress.add_task(f"reindexing {name}", total=None)
                    while True:
                        task = ds.get_task(task_id)
                        details = task["details"]
                        progress.update(
                            bar, completed=details["indexed"], total=details["received"]
                        )
                        if task["status"] in ("succeeded", "failed"):
                            break
                        time.sleep(0.2)
                if task["status"] == "failed":
                    console.print(f"[red]reindex of {name} failed:[/] {task['error']}")
                    raise typer.Exit(1)
                console.print(
                    f"{name}: reindexed, {details['indexed']} documents in"
                    f" {time.perf_counter() - started:.1f} s (task {task_id})"
                )
        except ClientError as exc:
            console.print(f"[red]reindex failed:[/] {getattr(exc, 'message', exc)}")
            raise typer.Exit(1) from None


def _reindex_local(settings: Settings, collection: str | None, all_: bool) -> None:
    engine, backend = _engine_and_backend(settings, "reindex")
    try:
        _reindex_each(engine, backend, collection, all_)
    finally:
        backend.close()
        engine.dispose()


def _reindex_each(engine: Any, backend: Any, collection: str | None, all_: bool) -> None:
    from docuseek import collections as collections_mod
    from docuseek.reindex import reindex as run_reindex

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
        if summary.files_requeued:
            console.print(f"{name}: {summary.files_requeued} file(s) queued to be extracted again")


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
    with _maintenance_database(settings) as settings:
        engine, backend = _engine_and_backend(settings, "reconcile")
        try:
            report = run_reconcile(engine, backend, collection, repair=repair)
        except DocuseekError as exc:
            console.print(f"[red]reconcile of {collection} failed:[/] {exc.message}")
            raise typer.Exit(1) from None
        finally:
            backend.close()
            engine.dispose()
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


files_app = typer.Typer(help="Stored originals of uploaded files.", no_args_is_help=True)
app.add_typer(files_app, name="files")


@files_app.command("gc")
def files_gc(
    older_than: Annotated[
        float,
        typer.Option(min=0, help="Keep originals stored (or uploaded again) this recently, s"),
    ] = 3600.0,
) -> None:
    """Delete stored originals no current document uses (deleted, or replaced by another
    file or a JSON write); identical bytes another document still uses stay."""
    from docuseek.db import make_engine
    from docuseek.files.storage import collect_garbage

    settings = get_settings()
    _setup(settings)
    with _maintenance_database(settings) as settings:
        engine = make_engine(_require_database(settings), application_name="docuseek-files-gc")
        try:
            done = collect_garbage(engine, older_than)
        finally:
            engine.dispose()
    console.print(
        f"deleted {done.files} original(s), {done.bytes / 1e6:.1f} MB;"
        f" {done.stale_links} link(s) of replaced documents dropped"
    )


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
