"""The audit sink as a foreground process, stopped by SIGTERM or SIGINT.

Run it with `hookline sink`, or `python -m sinks.worker [CONFIG]`, where
CONFIG defaults to $HOOKLINE_CONFIG or config/hookline.toml.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from hookline.config import HooklineConfig, load_config
from sinks.audit import AuditSink

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def run(config: HooklineConfig) -> None:
    """Run the audit sink until SIGTERM or SIGINT, logging at INFO.

    Exits with status 1 when the sink fails on its own.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    failed = asyncio.run(_serve(config))
    if failed:
        raise SystemExit(1)


async def _serve(config: HooklineConfig) -> bool:
    """Run the sink until a stop signal; return True when the sink failed instead."""
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _request_stop, stop_requested, signum)

    sink = AuditSink(config)
    await sink.start()
    stop_waiter = asyncio.create_task(stop_requested.wait())
    sink_waiter = asyncio.create_task(sink.wait())
    try:
        await asyncio.wait({stop_waiter, sink_waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop_waiter.cancel()
        await sink.stop()
    # The sink logged its error in stop(); only the exit status is left to set.
    return (
        sink_waiter.done() and not sink_waiter.cancelled() and sink_waiter.exception() is not None
    )


def _request_stop(stop_requested: asyncio.Event, signum: int) -> None:
    logger.info("received %s; stopping the audit sink", signal.Signals(signum).name)
    stop_requested.set()


if __name__ == "__main__":
    run(load_config(sys.argv[1] if len(sys.argv) > 1 else None))
