"""Cost of bounding one await with `asyncio.wait_for` against `asyncio.timeout`, on uvloop.

Ingest bounds each produce with `asyncio.wait_for` (`ingest/receiver.py`, `_produce`). On
Python 3.11, `wait_for` wraps the awaited coroutine in a new Task, while the
`asyncio.timeout()` context manager (Python 3.11+) only schedules a timer handle. This
script times both around a coroutine that waits for a future resolved by a loop callback,
as a produce waits for its acknowledgement, and prints the microseconds per call:

    python -m bench.timeout_cost [--calls 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence

import uvloop

TIMEOUT_SECONDS = 5.0


async def _acknowledged() -> None:
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    loop.call_soon(future.set_result, None)
    await future


async def _bare() -> None:
    await _acknowledged()


async def _with_wait_for() -> None:
    await asyncio.wait_for(_acknowledged(), TIMEOUT_SECONDS)


async def _with_timeout() -> None:
    async with asyncio.timeout(TIMEOUT_SECONDS):
        await _acknowledged()


async def _time_calls(step: Callable[[], Awaitable[None]], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        await step()
    return (time.perf_counter() - started) / calls * 1e6


async def measure(calls: int) -> dict[str, float]:
    """Return µs per call of each variant; the best of three passes of CALLS calls each."""
    variants = {"bare": _bare, "wait_for": _with_wait_for, "timeout": _with_timeout}
    best = {name: float("inf") for name in variants}
    for _ in range(3):
        for name, step in variants.items():
            best[name] = min(best[name], await _time_calls(step, calls))
    return {f"{name}_us": value for name, value in best.items()}


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, measure and print the result as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.timeout_cost", description=__doc__)
    parser.add_argument("--calls", type=int, default=100_000, help="calls per variant and pass")
    args = parser.parse_args(argv)
    print(json.dumps(uvloop.run(measure(args.calls))))


if __name__ == "__main__":
    main()
