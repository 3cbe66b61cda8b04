"""Serve the ingest application with uvicorn in the foreground."""

from __future__ import annotations

import logging

import uvicorn

from hookline.config import HooklineConfig
from ingest.app import create_app

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def run(config: HooklineConfig, host: str | None = None, port: int | None = None) -> None:
    """Serve ingest until SIGINT or SIGTERM, then shut down gracefully.

    Uses one worker process with uvloop and httptools and no access log,
    because every webhook is recorded in Kafka and counted in the metrics.
    When no logging is configured yet, INFO and above go to stderr.

    Args:
        config: The deployment config.
        host: Address to listen on; defaults to `config.ingest.host`.
        port: Port to listen on; defaults to `config.ingest.port`.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)

    app = create_app(config)
    uvicorn.run(
        app,
        host=host if host is not None else config.ingest.host,
        port=port if port is not None else config.ingest.port,
        loop="uvloop",
        http="httptools",
        workers=1,
        access_log=False,
        log_config=None,
        lifespan="on",
    )
