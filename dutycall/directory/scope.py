"""Scope: which units, rooms and rows a principal reaches, as SQL clauses and checks, and the tree order."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..db import Base
from .errors import NotFound
from .models import DutyRoom, Unit
from .principal import Principal, PrincipalKind


def within(column: Any, who: Principal) -> ColumnElement[bool]:
    """SQL: a unit path column lies in ``who``'s subtree (the one scope rule, as a clause)."""
    clause: ColumnElement[bool] = column.startswith(who.unit_path, autoescape=True)
    return clause


async def unit_in_scope(db: AsyncSession, who: Principal, unit_id: object) -> Unit:
    """A unit by id in ``who``'s scope, or NotFound (never Forbidden: out of scope does not exist)."""
    unit = await db.get(Unit, unit_id) if isinstance(unit_id, int) and not isinstance(unit_id, bool) else None
    if unit is None or not who.covers(unit.path):
        raise NotFound("directory.unit_not_found", id=unit_id)
    return unit


async def room_in_scope(db: AsyncSession, who: Principal, room_id: object) -> DutyRoom:
    """A duty room by id in ``who``'s scope (a console: only its own room), or NotFound."""
    room = await db.get(DutyRoom, room_id) if isinstance(room_id, int) and not isinstance(room_id, bool) else None
    if room is None:
        raise NotFound("directory.room_not_found", id=room_id)
    unit = await db.get(Unit, room.unit_id)
    if unit is None or not who.covers(unit.path):
        raise NotFound("directory.room_not_found", id=room_id)
    if who.kind == PrincipalKind.DEVICE and who.duty_room_id != room.id:
        raise NotFound("directory.room_not_found", id=room_id)
    return room


async def unit_active(db: AsyncSession, unit_id: int) -> bool:
    """Whether a unit and every unit above it are active (a deactivated district takes its streets)."""
    unit = await db.get(Unit, unit_id)
    if unit is None or not unit.active:
        return False
    ids = [int(p) for p in unit.path.strip("/").split("/") if p]
    inactive = (await db.execute(select(func.count(Unit.id)).where(
        Unit.id.in_(ids), Unit.active.is_(False)))).scalar_one()
    return inactive == 0


async def move_path_copies(db: AsyncSession, old_path: str, new_path: str) -> None:
    """Rows elsewhere keep a copy of their unit's path for scope (notices, roll-calls, plans,
    the audit log): move every copy under ``old_path`` in the same transaction as the units,
    so nothing is orphaned out of its new scope or left visible to the old one."""
    for table in Base.metadata.sorted_tables:
        column = table.c.get("unit_path")
        if column is None:
            continue
        await db.execute(table.update().where(column.startswith(old_path, autoescape=True)).values(
            {column: literal(new_path) + func.substr(column, len(old_path) + 1)}))


def tree_order(units: Any) -> list[Unit]:
    """Units depth-first, siblings by (sort_order, code): the order of every listing and the handbook."""
    children: dict[int | None, list[Unit]] = {}
    ids = {u.id for u in units}
    for unit in units:
        parent = unit.parent_id if unit.parent_id in ids else None
        children.setdefault(parent, []).append(unit)
    for siblings in children.values():
        siblings.sort(key=lambda u: (u.sort_order, u.code))
    ordered: list[Unit] = []

    def walk(parent: int | None) -> None:
        for unit in children.get(parent, []):
            ordered.append(unit)
            walk(unit.id)

    walk(None)
    return ordered
