"""ASGI applications that the ingest benchmark serves, and a command that serves them.

- `create_bare_app`: a Litestar handler on the same route as ingest that reads the body and
  returns 200. It is the ceiling for ingest on this server stack.
- `create_hookline_app`: Hookline's ingest application for the config named by
  $HOOKLINE_CONFIG, for runs with more than one uvicorn worker, which need an import string.

`python -m bench.apps APP --port PORT [--workers N]` serves either with the uvicorn settings
of `ingest.server.run`: uvloop, httptools, no access log, lifespan on.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import uvicorn
from litestar import Litestar, Request, get, post
from litestar.params import FromPath

from hookline.config import load_config
from ingest.server import LOG_FORMAT, serving_app

FACTORIES = {
    "bare": "bench.apps:create_bare_app",
    "hookline": "bench.apps:create_hookline_app",
}


@post("/webhooks/{source:str}", status_code=200, request_max_body_size=None)
async def receive_bare(request: Request, source: FromPath[str]) -> dict[str, int]:
    """Read the whole body and return its length."""
    body = await request.body()
    return {"received_bytes": len(body)}


@get("/healthz")
async def healthz_bare() -> dict[str, str]:
    """Return 200 while the process serves requests."""
    return {"status": "ok"}


def create_bare_app() -> Litestar:
    """Build the bare Litestar application."""
    return Litestar(route_handlers=[receive_bare, healthz_bare])


def create_hookline_app() -> Litestar:
    """Build the ingest application for $HOOKLINE_CONFIG as `hookline ingest` serves it."""
    return serving_app(load_config())


def serve(app: str, host: str, port: int, workers: int) -> None:
    """Serve APP (a key of FACTORIES) until SIGINT or SIGTERM."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    uvicorn.run(
        FACTORIES[app],
        factory=True,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        workers=workers,
        access_log=False,
        log_config=None,
        lifespan="on",
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and serve the chosen application."""
    parser = argparse.ArgumentParser(prog="python -m bench.apps", description=__doc__)
    parser.add_argument("app", choices=sorted(FACTORIES), help="application to serve")
    parser.add_argument("--host", default="127.0.0.1", help="listen address")
    parser.add_argument("--port", type=int, required=True, help="listen port")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args(argv)
    serve(args.app, args.host, args.port, args.workers)


if __name__ == "__main__":
    main()
