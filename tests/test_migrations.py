"""Migrations from an empty database, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect

from dutycall import db

TABLES = {"units", "duty_rooms", "accounts", "device_credentials", "web_sessions", "audit_log",
          "roster_shifts", "roster_submissions", "roll_calls", "attendance", "roll_call_plans", "notices"}


async def _tables(url: str) -> set[str]:
    engine = db.make_engine(url)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await engine.dispose()
    return names


async def test_upgrade_from_empty_downgrade_and_upgrade_again(database_url):
    assert not (await _tables(database_url)) & TABLES
    await db.upgrade(database_url)
    assert TABLES <= await _tables(database_url)
    await db.upgrade(database_url)  # idempotent: every start runs it
    await asyncio.to_thread(db.downgrade_sync, database_url, "base")
    assert not (await _tables(database_url)) & TABLES
    await db.upgrade(database_url)
    assert TABLES <= await _tables(database_url)
