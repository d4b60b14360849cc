"""The database: SQLAlchemy 2 (async) engine, the declarative base, Alembic migrations.

SQLite file by default (``sqlite+aiosqlite:///data/dutycall.sqlite3``), PostgreSQL by URL
(``postgresql+asyncpg://user:pass@host/db``).
"""

from __future__ import annotations

import asyncio
import pathlib

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

MIGRATIONS = pathlib.Path(__file__).parent / "migrations"


class Base(DeclarativeBase):
    """Base of every ORM model."""


def normalise_url(url: str) -> str:
    """Accept plain ``sqlite:///`` and ``postgresql://`` URLs and pick the async drivers."""
    if url.startswith("sqlite:///"):
        url = "sqlite+aiosqlite:///" + url[len("sqlite:///"):]
    elif url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite+aiosqlite:///"):
        path = url[len("sqlite+aiosqlite:///"):]
        if path and path != ":memory:":
            pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    return url


def make_engine(url: str) -> AsyncEngine:
    url = normalise_url(url)
    engine = create_async_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    if url.startswith("sqlite"):

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            # One writer at a time: a writer waits (in aiosqlite's thread, not on the event loop) for
            # another's commit, which a loaded event loop can delay by seconds. 150 consoles signing
            # in together beside a busy fan-out waited past 5 s and got 500s.
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade_sync(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (blocking; call from a thread inside asyncio)."""
    from alembic import command

    command.upgrade(_alembic_config(url), revision)


def downgrade_sync(url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(_alembic_config(url), revision)


async def upgrade(url: str) -> None:
    """Apply all migrations; safe to call at every start."""
    await asyncio.to_thread(upgrade_sync, url)
