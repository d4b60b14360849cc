"""The entry point: ``dutycall`` (or ``python -m dutycall.server``).

    dutycall [serve] [flags]      start the server (the default)
    dutycall db upgrade           apply database migrations
    dutycall demo                 load the demo city (and create the first admin if needed)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import ssl
import sys
from collections.abc import AsyncIterator

from aiohttp import web

from . import __version__, memory
from . import config as config_mod


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dutycall", description="dutycall duty-room video server")
    parser.add_argument("--version", action="version", version=f"dutycall {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="start the server (the default)")
    config_mod.add_arguments(serve)
    config_mod.add_arguments(parser)
    database = sub.add_parser("db", help="database maintenance")
    database.add_argument("action", choices=("upgrade",))
    database.add_argument("--database-url",
                          default=os.environ.get("DUTYCALL_DATABASE_URL", config_mod.Config.database_url))
    demo = sub.add_parser("demo", help="load a demo city: units, rooms, accounts and a month of roster")
    demo.add_argument("--database-url", default=os.environ.get("DUTYCALL_DATABASE_URL", config_mod.Config.database_url))
    demo.add_argument("--timezone", default=os.environ.get("DUTYCALL_TIMEZONE", ""),
                      help="the zone the demo's days and times are in (e.g. Asia/Shanghai; default: the system's)")
    return parser


def _logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aioice is chatty about every candidate pair; alembic about every plugin.
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def serve(config: config_mod.Config) -> None:
    from .web import create_app
    from .web.hardening import AccessLogger

    ssl_context = None
    scheme = "http"
    if config.tls_cert:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(config.tls_cert, config.tls_key)
        scheme = "https"
    shown = "localhost" if config.host in ("0.0.0.0", "::") else config.host
    print(f"dutycall {__version__}: open {scheme}://{shown}:{config.port}/ in a browser", flush=True)
    trim_interval = memory.interval_from_env()  # a bad value stops the start here
    app = create_app(config)
    app.cleanup_ctx.append(lambda _app: _trim_memory(trim_interval))
    app.on_startup.append(_freeze_startup_objects)  # after every other start-up step (appended last)
    web.run_app(
        app, host=config.host, port=config.port, ssl_context=ssl_context,
        print=None, shutdown_timeout=5, access_log_class=AccessLogger,
    )


async def _freeze_startup_objects(_app: web.Application) -> None:
    frozen = memory.freeze_startup_objects()
    logging.getLogger(__name__).info("start-up objects kept out of the garbage collector's walks: %d", frozen)


async def _trim_memory(interval: float) -> AsyncIterator[None]:
    """Give freed native memory back to the system now and then (``dutycall.memory``): a
    process-wide concern, so the server process does it, not the app every test builds."""
    async with memory.trimming(interval):
        yield


async def load_demo(database_url: str) -> None:
    from . import db
    from .directory.bootstrap import ensure_first_admin
    from .directory.demo import DEMO_PASSWORD, DemoExists
    from .directory.demo import load_demo as load

    await db.upgrade(database_url)
    engine = db.make_engine(database_url)
    sessionmaker = db.make_sessionmaker(engine)
    try:
        admin = await ensure_first_admin(sessionmaker, os.environ.get("DUTYCALL_ADMIN_USERNAME"),
                                         os.environ.get("DUTYCALL_ADMIN_PASSWORD"))
        if admin is not None:
            if admin.generated:
                from .web.app import initial_password_path, write_secret_file

                path = write_secret_file(initial_password_path(database_url), admin.password + "\n")
                print(f"administrator: {admin.username}, password in {path} (readable by root only)")
            else:
                print(f"administrator: {admin.username} (password from DUTYCALL_ADMIN_PASSWORD)")
        try:
            summary = await load(sessionmaker)
        except DemoExists as exc:
            print(f"nothing to do: {exc}")
            return
        print(f"demo city loaded: {summary.units} units, {summary.rooms} duty rooms, "
              f"{summary.accounts} accounts, {summary.shifts} roster shifts, {summary.incidents} incidents, "
              f"{summary.rollcalls} past roll-calls")
        print(f"demo accounts (password {DEMO_PASSWORD}): city-host, city-leader, city-viewer, "
              "d01-admin, d01-host, d01s01 (a street duty officer), a01 (an agency duty officer), ...")
        print(f"a console for {summary.console_room}: {summary.console_link}")
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "db":
        _logging("WARNING")
        from . import db

        asyncio.run(db.upgrade(args.database_url))
        print("database is up to date")
        return
    if args.command == "demo":
        _logging("WARNING")
        from . import timezone

        timezone.set_zone(config_mod.from_timezone_flag(args.timezone))
        asyncio.run(load_demo(args.database_url))
        return
    config = config_mod.from_args(args)
    _logging(config.log_level)
    serve(config)


if __name__ == "__main__":
    main(sys.argv[1:])
