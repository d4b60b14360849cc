"""The host page's room picker and history: the unit tree with its duty rooms (searchable by
name and pinyin initials), saved room groups, and past roll-calls with their rates.

Everything is read within the reader's scope. A saved group's rooms are checked against the
saver's scope when it is saved and filtered by the reader's when it is read, so a group never
hands out a room outside the reader's scope (a shared group, a room moved since, a forged id).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .. import timezone
from ..directory.models import Account, DutyRoom, Unit
from ..directory.principal import Principal, PrincipalKind
from ..directory.scope import tree_order, within
from ..text import unsafe_reason
from .errors import Conflict, Forbidden, Invalid, NotFound
from .machine import Outcome
from .models import RollCallRecord, RoomGroup

GROUP_NAME_MAX = 64
GROUP_ROOMS_MAX = 5000
GROUPS_MAX = 200
HISTORY_MAX = 200


def _host(who: Principal) -> None:
    if who.kind != PrincipalKind.ACCOUNT or not who.may("rollcall.host"):
        raise Forbidden("rollcall.hosts_only")


class RoomPicker:
    """The picker's tree and saved groups, and the history list, of one server."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def _rooms_in_scope(self, db: AsyncSession, who: Principal, room_ids: list[int]) -> set[int]:
        if not room_ids:
            return set()
        return set((await db.execute(select(DutyRoom.id).join(Unit).where(
            DutyRoom.id.in_(room_ids), DutyRoom.active.is_(True), within(Unit.path, who)))).scalars())

    async def tree(self, who: Principal) -> dict[str, Any]:
        """``GET /api/rollcall-picker``: the active units and duty rooms in scope, in tree order,
        each with its pinyin key (initials, then full pinyin) for the search box."""
        _host(who)
        async with self.sessionmaker() as db:
            units = tree_order((await db.execute(select(Unit).where(
                within(Unit.path, who), Unit.active.is_(True)))).scalars().all())
            ids = {u.id for u in units}
            rooms = (await db.execute(select(DutyRoom).where(
                DutyRoom.unit_id.in_(ids), DutyRoom.active.is_(True)).order_by(DutyRoom.id))).scalars().all()
        return {
            "units": [{"id": u.id, "name": u.name, "kind": u.kind.value,
                       "parent_id": u.parent_id if u.parent_id in ids else None, "pinyin": u.name_pinyin}
                      for u in units],
            "rooms": [{"id": r.id, "unit_id": r.unit_id, "name": r.name, "pinyin": r.name_pinyin} for r in rooms],
        }

    # -- saved groups ---------------------------------------------------------------------------

    async def groups(self, who: Principal) -> list[dict[str, Any]]:
        """``GET /api/room-groups``: the reader's own groups and those shared at their unit,
        each with only the rooms in the reader's scope."""
        _host(who)
        async with self.sessionmaker() as db:
            found = (await db.execute(select(RoomGroup).where(or_(
                RoomGroup.owner_account_id == who.id,
                (RoomGroup.shared.is_(True)) & (RoomGroup.unit_id == who.unit_id)))
                .order_by(RoomGroup.name, RoomGroup.id).limit(GROUPS_MAX))).scalars().all()
            wanted = sorted({r for g in found for r in g.room_ids})
            visible = await self._rooms_in_scope(db, who, wanted)
        return [self._json(g, who, visible) for g in found]

    @staticmethod
    def _json(group: RoomGroup, who: Principal, visible: set[int]) -> dict[str, Any]:
        return {"id": group.id, "name": group.name, "shared": group.shared,
                "mine": group.owner_account_id == who.id,
                "room_ids": [r for r in group.room_ids if r in visible]}

    async def save_group(self, who: Principal, data: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/room-groups``: ``{"name", "room_ids", "shared"}``; a group of the same
        name of the same owner is replaced. Every room must be in the saver's scope."""
        _host(who)
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > GROUP_NAME_MAX or unsafe_reason(name):
            raise Invalid("groups.name", field="name", max=GROUP_NAME_MAX)
        room_ids = data.get("room_ids")
        if (not isinstance(room_ids, list) or not room_ids or len(room_ids) > GROUP_ROOMS_MAX
                or not all(isinstance(r, int) and not isinstance(r, bool) and 0 < r < 2**63 for r in room_ids)):
            raise Invalid("groups.room_ids", field="room_ids", max=GROUP_ROOMS_MAX)
        shared = data.get("shared", False)
        if not isinstance(shared, bool):
            raise Invalid("field.boolean", field="shared", name="shared")
        ids = list(dict.fromkeys(room_ids))
        async with self.sessionmaker() as db:
            in_scope = await self._rooms_in_scope(db, who, ids)
            missing = [r for r in ids if r not in in_scope]
            if missing:
                raise NotFound("rollcall.rooms_not_in_scope", field="room_ids",
                               ids=", ".join(map(str, missing[:20])))
            group = (await db.execute(select(RoomGroup).where(
                RoomGroup.owner_account_id == who.id, RoomGroup.name == name.strip()))).scalar_one_or_none()
            if group is None:
                count = len((await db.execute(select(RoomGroup.id).where(
                    RoomGroup.owner_account_id == who.id))).all())
                if count >= GROUPS_MAX:
                    raise Invalid("groups.too_many", field="name", max=GROUPS_MAX)
                group = RoomGroup(owner_account_id=who.id, unit_id=who.unit_id, name=name.strip())
                db.add(group)
            group.room_ids, group.shared = ids, shared
            try:
                await db.commit()
            except IntegrityError:
                # The same owner saved a new group of this name at the same moment (one name per
                # owner, migration 0015): the other save won.
                await db.rollback()
                raise Conflict("groups.name_taken", field="name", name=name.strip()) from None
            return self._json(group, who, in_scope)

    async def delete_group(self, who: Principal, group_id: int) -> dict[str, Any]:
        """``DELETE /api/room-groups/{id}``: only its owner deletes a group."""
        _host(who)
        async with self.sessionmaker() as db:
            group = await db.get(RoomGroup, group_id)
            if group is None or group.owner_account_id != who.id:
                raise NotFound("groups.not_found", id=group_id)
            await db.delete(group)
            await db.commit()
        return {"deleted": group_id}

    # -- history -------------------------------------------------------------------------------

    async def history(self, who: Principal, limit: int = 50) -> list[dict[str, Any]]:
        """``GET /api/rollcalls``: the latest roll-calls in scope, newest first, with their host,
        rooms and rates (read from each one's state, so a running one counts so far)."""
        if who.kind != PrincipalKind.ACCOUNT:
            raise Forbidden("rollcall.console_no_board")
        limit = max(1, min(limit, HISTORY_MAX))
        async with self.sessionmaker() as db:
            rows = (await db.execute(
                select(RollCallRecord, Account.display_name)
                .outerjoin(Account, Account.id == RollCallRecord.host_account_id)
                .where(within(RollCallRecord.unit_path, who))
                .order_by(RollCallRecord.id.desc()).limit(limit))).all()
        listed = []
        for record, host in rows:
            statuses = Counter(str(r.get("status")) for r in (record.state or {}).get("rooms", []))
            rooms = sum(statuses.values())
            # Of the rooms expected to answer (all but the excused): a room never called counts
            # as absent here, as it does on the sheet.
            expected = rooms - statuses[Outcome.EXCUSED.value]
            answered = statuses[Outcome.ON_TIME.value] + statuses[Outcome.LATE.value]
            absent = sum(statuses[o.value] for o in (Outcome.ABSENT, Outcome.OFFLINE, Outcome.NOT_CALLED))
            when = record.started_at or record.created_at
            listed.append({
                "id": record.id, "title": record.title, "kind": record.kind, "phase": record.phase,
                "host": host or "", "rooms": rooms,
                "at": timezone.local(when).isoformat() if when else None,
                "ended_at": timezone.local(record.ended_at).isoformat() if record.ended_at else None,
                "answered_rate": round(answered / expected, 4) if expected else None,
                "late_rate": round(statuses[Outcome.LATE.value] / expected, 4) if expected else None,
                "absent_rate": round(absent / expected, 4) if expected else None,
                "counts": {o.value: statuses[o.value] for o in Outcome},
            })
        return listed
