"""The entry point: ``dutycall`` (or ``python -m dutycall.server``) starts the server."""

from __future__ import annotations

import argparse
import logging
import ssl
import sys

from aiohttp import web

from . import __version__, config as config_mod
from .web import create_app


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dutycall", description="dutycall duty-room video server")
    parser.add_argument("--version", action="version", version=f"dutycall {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="start the server (the default)")
    config_mod.add_arguments(serve)
    config_mod.add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    config = config_mod.from_args(args)
    logging.basicConfig(
        level=getattr(logging, config.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aioice/aiortc are chatty at INFO about every candidate pair.
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    ssl_context = None
    scheme = "http"
    if config.tls_cert:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(config.tls_cert, config.tls_key)
        scheme = "https"
    shown = "localhost" if config.host in ("0.0.0.0", "::") else config.host
    print(f"dutycall {__version__}: open {scheme}://{shown}:{config.port}/ in a browser", flush=True)
    web.run_app(
        create_app(config), host=config.host, port=config.port, ssl_context=ssl_context,
        print=None, shutdown_timeout=5,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
