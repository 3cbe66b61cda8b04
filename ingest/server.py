"""Serve the ingest application with uvicorn in the foreground."""

from __future__ import annotations

import contextlib
import gc
import logging
import sys

import uvicorn
from litestar import Litestar

from hookline.config import HooklineConfig, IngestConfig
from hookline.errors import ConfigError
from ingest.app import create_app
from ingest.http_protocol import bounded_protocol

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# uvicorn's exit code when the server did not start, as `uvicorn.run` uses it.
STARTUP_FAILURE = 3


def _check_limits(ingest: IngestConfig) -> None:
    limits = {
        "request_head_timeout_seconds": ingest.request_head_timeout_seconds,
        "max_request_head_bytes": ingest.max_request_head_bytes,
        "body_read_timeout_seconds": ingest.body_read_timeout_seconds,
        "keep_alive_timeout_seconds": ingest.keep_alive_timeout_seconds,
    }
    for name, value in limits.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"ingest.{name} = {value!r} is invalid; use a positive number")


def server_config(
    config: HooklineConfig, app: Litestar, host: str | None = None, port: int | None = None
) -> uvicorn.Config:
    """Return the uvicorn settings that ingest runs with, for `run` and for tests.

    One worker with uvloop and the httptools parser bounded by the `[ingest]`
    head timeout and head size, and no access log, because every webhook is
    recorded in Kafka and counted in the metrics. Requests rejected for their
    head are recorded through the app's receiver.

    Args:
        config: The deployment config.
        app: The ingest application from `create_app`.
        host: Address to listen on; defaults to `config.ingest.host`.
        port: Port to listen on; defaults to `config.ingest.port`.

    Raises:
        ConfigError: when a limit in `[ingest]` is not positive.
    """
    ingest = config.ingest
    _check_limits(ingest)
    # Apps from `create_app` have a receiver, which records head rejections too.
    receiver = getattr(app.state, "receiver", None)
    protocol = bounded_protocol(
        ingest.request_head_timeout_seconds,
        ingest.max_request_head_bytes,
        on_head_rejected=receiver.record_head_rejection if receiver is not None else None,
    )
    return uvicorn.Config(
        app,
        host=host if host is not None else ingest.host,
        port=port if port is not None else ingest.port,
        loop="uvloop",
        http=protocol,
        workers=1,
        access_log=False,
        log_config=None,
        lifespan="on",
        timeout_keep_alive=ingest.keep_alive_timeout_seconds,
    )


def freeze_startup_objects() -> None:
    """Exclude every object that exists now from later garbage collections.

    After start-up the process has tens of thousands of long-lived objects
    (modules, the application, the Kafka client). A full collection walks
    all of them and pauses the event loop for tens of milliseconds, which
    showed as a p99 latency several times the p50 under load. Frozen objects
    are never collected; objects created after the freeze still are.
    """
    gc.collect()
    gc.freeze()
    logging.getLogger(__name__).info(
        "froze %d start-up objects for the collector", gc.get_freeze_count()
    )


def serving_app(config: HooklineConfig) -> Litestar:
    """Return the ingest application as `run` serves it: `create_app` plus the start-up freeze."""
    app = create_app(config)
    app.on_startup.append(freeze_startup_objects)
    return app


def run(config: HooklineConfig, host: str | None = None, port: int | None = None) -> None:
    """Serve ingest until SIGINT or SIGTERM, then shut down gracefully.

    When no logging is configured yet, INFO and above go to stderr. Exits with
    status 3, as uvicorn does, when the server cannot start.

    Args:
        config: The deployment config.
        host: Address to listen on; defaults to `config.ingest.host`.
        port: Port to listen on; defaults to `config.ingest.port`.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)

    server = uvicorn.Server(server_config(config, serving_app(config), host, port))
    # uvicorn re-raises a captured SIGINT after its graceful shutdown.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
