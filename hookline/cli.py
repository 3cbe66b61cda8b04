"""The `hookline` command: run the pipeline, send samples, query the audit log."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from hookline.config import HooklineConfig, load_config
from hookline.errors import HooklineError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


# Comma-separated names of loggers that log at DEBUG without --verbose, for example
# "streams.router" to see every repeat the router drops and the delivery it matched.
DEBUG_LOGGERS_ENV = "HOOKLINE_DEBUG_LOGGERS"


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT, stream=sys.stderr
    )
    if not verbose:
        # httpx logs every request of send-sample and query at INFO, which
        # repeats the line those commands print themselves.
        logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in os.environ.get(DEBUG_LOGGERS_ENV, "").split(","):
        if name.strip():
            logging.getLogger(name.strip()).setLevel(logging.DEBUG)


def _config(context: click.Context) -> HooklineConfig:
    config: HooklineConfig = context.obj["config"]
    return config


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Config file (default: $HOOKLINE_CONFIG or config/hookline.toml).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
@click.pass_context
def main(context: click.Context, config_path: Path | None, verbose: bool) -> None:
    """Hookline: verified webhook ingestion into Kafka with a ClickHouse audit log."""
    _setup_logging(verbose)
    try:
        config = load_config(config_path)
    except HooklineError as error:
        raise click.ClickException(str(error)) from None
    context.obj = {"config": config}


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=Path("data"),
    show_default=True,
    help="Folder for the broker's log, the chDB data and process logs.",
)
@click.pass_context
def run(context: click.Context, data_dir: Path) -> None:
    """Run broker, ingest, router and audit sink in the foreground until Ctrl-C."""
    from hookline.supervisor import run_stack

    try:
        run_stack(_config(context), data_dir)
    except HooklineError as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.option(
    "--data-dir", type=click.Path(path_type=Path), default=Path("data"), show_default=True
)
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for readiness.")
@click.pass_context
def up(context: click.Context, data_dir: Path, timeout: float) -> None:
    """Start the whole pipeline in the background and wait until it is ready."""
    from hookline.supervisor import start_background

    try:
        start_background(_config(context), data_dir, timeout)
    except HooklineError as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.option(
    "--data-dir", type=click.Path(path_type=Path), default=Path("data"), show_default=True
)
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for the stop.")
def down(data_dir: Path, timeout: float) -> None:
    """Stop a pipeline started with `hookline up`."""
    from hookline.supervisor import stop_background

    stop_background(data_dir, timeout)


@main.command()
@click.option("--host", default=None, help="Listen address (default: ingest.host).")
@click.option("--port", type=int, default=None, help="Listen port (default: ingest.port).")
@click.pass_context
def ingest(context: click.Context, host: str | None, port: int | None) -> None:
    """Run only the ingest HTTP server."""
    from ingest.server import run as run_ingest

    run_ingest(_config(context), host=host, port=port)


@main.command()
@click.pass_context
def router(context: click.Context) -> None:
    """Run only the Faust router worker."""
    from streams.worker import run as run_router

    run_router(_config(context))


@main.command()
@click.pass_context
def sink(context: click.Context) -> None:
    """Run only the ClickHouse audit sink."""
    from sinks.worker import run as run_sink

    run_sink(_config(context))


@main.group()
def topics() -> None:
    """Manage the Kafka topics Hookline reads and writes."""


@topics.command("create")
@click.pass_context
def topics_create(context: click.Context) -> None:
    """Create every topic named by the config and the routing rules."""
    import asyncio

    from streams.topics import ensure_topics

    try:
        created = asyncio.run(ensure_topics(_config(context)))
    except HooklineError as error:
        raise click.ClickException(str(error)) from None
    for name in created:
        click.echo(name)


@main.command("send-sample")
@click.argument("source")
@click.option("--url", default=None, help="Ingest base URL (default: from ingest.host/port).")
@click.option("--count", default=1, show_default=True, help="Distinct events to send.")
@click.option("--repeat", default=1, show_default=True, help="Deliveries of each event.")
@click.option("--forge", is_flag=True, help="Sign with a wrong secret to see a 401.")
@click.pass_context
def send_sample(
    context: click.Context, source: str, url: str | None, count: int, repeat: int, forge: bool
) -> None:
    """Sign a sample payload for SOURCE and POST it to the running ingest."""
    from hookline.sample_client import send_samples

    config = _config(context)
    if source not in config.sources:
        known = ", ".join(sorted(config.sources)) or "none"
        raise click.ClickException(f"source {source!r} is not configured; configured: {known}")

    base_url = url or f"http://{config.ingest.host}:{config.ingest.port}"
    failures = send_samples(config.sources[source], base_url, count, repeat, forge, click.echo)
    if failures and not forge:
        raise click.ClickException(f"{failures} request(s) were not accepted")


def _print_rows(columns: list[str], rows: list[Any], as_json: bool) -> None:
    if as_json:
        import orjson

        for row in rows:
            line = orjson.dumps(dict(zip(columns, row, strict=True)), default=str)
            click.echo(line.decode())
        return

    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*(str(value) for value in row))
    Console().print(table)
    click.echo(f"{len(rows)} row(s)")


@main.command()
@click.argument("sql")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per row.")
@click.pass_context
def query(context: click.Context, sql: str, as_json: bool) -> None:
    """Run read-only SQL on the audit log and print the rows."""
    from sinks.query import run_query

    try:
        columns, rows = run_query(_config(context), sql)
    except HooklineError as error:
        raise click.ClickException(str(error)) from None
    _print_rows(columns, rows, as_json)


if __name__ == "__main__":
    main()
