"""Running the router as a Faust worker in the foreground.

`python -m streams.worker --config config/hookline.toml` runs the same worker
as `hookline router`.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faust

from hookline.config import HooklineConfig, load_config
from streams.app import create_app

logger = logging.getLogger(__name__)


def run(config: HooklineConfig, *, store: str | None = None) -> None:
    """Run the router until SIGTERM or SIGINT, logging at INFO.

    The Faust web server listens on 127.0.0.1:`router.web_port`, or is off when
    the port is 0. STORE overrides the table store URL (see `streams.app`).

    Raises:
        SystemExit: the worker crashed; the code is non-zero.
    """
    app = create_app(config, store=store)
    config.router.data_dir.mkdir(parents=True, exist_ok=True)
    worker = faust.Worker(
        app, loglevel="INFO", redirect_stdouts=False, logging_config=_debug_logging_config()
    )
    logger.info("Starting router %s on %s", config.router.app_id, config.kafka.bootstrap_servers)
    try:
        worker.execute_from_commandline()
    except SystemExit as exit_:
        if exit_.code not in (None, 0):
            raise
    logger.info("Router %s stopped", config.router.app_id)


def _debug_logging_config() -> dict[str, Any] | None:
    """Return a mode logging config that lets DEBUG records through to the log.

    The worker replaces the root handler with one at its own level, INFO,
    which drops the records of loggers that $HOOKLINE_DEBUG_LOGGERS set to
    DEBUG before. Their levels survive, so only the handler needs the lower
    level. Returns None when no logger is at DEBUG.
    """
    loggers = logging.Logger.manager.loggerDict.values()
    if not any(
        isinstance(item, logging.Logger) and item.level == logging.DEBUG for item in loggers
    ):
        return None
    handler = {"level": "DEBUG", "class": "colorlog.StreamHandler", "formatter": "colored"}
    return {"merge": True, "handlers": {"default": handler}}


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and run the router."""
    parser = argparse.ArgumentParser(prog="python -m streams.worker", description=__doc__)
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="Hookline config file (default: $HOOKLINE_CONFIG or config/hookline.toml)",
    )
    parser.add_argument("--store", default=None, help="table store URL, e.g. rocksdb://")
    args = parser.parse_args(argv)
    run(load_config(args.config), store=args.store)


if __name__ == "__main__":
    main()
