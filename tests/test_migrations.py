"""Migrations from an empty database, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
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


async def test_0015_keeps_duplicate_room_groups_renamed_and_makes_names_unique(database_url):
    """Groups of one owner saved twice under one name before 0015: the lowest id keeps the name,
    the others get " (<id>)"; afterwards a duplicate cannot be written."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    await asyncio.to_thread(db.upgrade_sync, database_url, "0014")
    engine = db.make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO units (id, code, name, kind, path, active, sort_order, name_pinyin, "
                                    "created_at, updated_at) VALUES (1, 'C', '市', 'city', '/1/', true, 0, '', "
                                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
            await conn.execute(text("INSERT INTO accounts (id, username, display_name, password_hash, role, unit_id, "
                                    "active, failed_logins, phone, name_pinyin, created_at) VALUES (1, 'h', 'h', 'x', "
                                    "'host', 1, true, 0, '', '', CURRENT_TIMESTAMP)"))
            for group_id, owner, name in ((1, 1, "夜班"), (2, 1, "夜班"), (3, 1, "早班"), (4, 1, "夜班"),
                                          (5, None, "夜班"), (6, None, "夜班")):
                await conn.execute(text(
                    "INSERT INTO room_groups (id, owner_account_id, unit_id, shared, name, room_ids, created_at) "
                    "VALUES (:id, :owner, 1, false, :name, '[]', CURRENT_TIMESTAMP)"),
                    {"id": group_id, "owner": owner, "name": name})
        await db.upgrade(database_url)
        async with engine.connect() as conn:
            names = dict((await conn.execute(text("SELECT id, name FROM room_groups ORDER BY id"))).all())
        assert names == {1: "夜班", 2: "夜班 (2)", 3: "早班", 4: "夜班 (4)", 5: "夜班", 6: "夜班"}
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(text(
                    "INSERT INTO room_groups (owner_account_id, unit_id, shared, name, room_ids, created_at) "
                    "VALUES (1, 1, false, '早班', '[]', CURRENT_TIMESTAMP)"))
    finally:
        await engine.dispose()
    await asyncio.to_thread(db.downgrade_sync, database_url, "0014")  # and back
    await db.upgrade(database_url)
