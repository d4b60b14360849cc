"""What the duty console (``/``) shows by name, never by the server's room names.

- ``GET /api/console/rooms``: the rooms a signed-in account may join from the console, with
  their human names: roll-calls in its scope that are scheduled or running (by title), and the
  standby rooms of its scope's duty rooms (a spot-check: by duty room and unit name). A duty
  room's console gets its own standby room only. The same rules as joining
  (:func:`rollcalls.may_join`): scope decides, out of scope is never listed.
- :class:`RoomNames`: on a signalling socket, the ``joined`` reply's ``room_info`` also carries
  the room's ``title`` (a roll-call's title, a duty room's name), looked up when the join is
  allowed, so the console never shows ``rollcall-1`` or ``standby-3``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy import select

from ..directory.models import DutyRoom, Unit
from ..directory.principal import Principal, PrincipalKind
from ..directory.scope import within
from ..rollcall.models import RollCallRecord
from ..rollcall.naming import RoomKind, parse_room, rollcall_room, standby_room
from .auth import principal_of
from .keys import SERVICES

routes = web.RouteTableDef()

#: Roll-calls a console may still enter.
OPEN_PHASES = ("scheduled", "running")
#: At most this many of each list (a city has ~100 duty rooms).
LIMIT = 500


@routes.get("/api/console/rooms")
async def console_rooms(request: web.Request) -> web.Response:
    who = principal_of(request)
    sessionmaker = request.app[SERVICES].sessionmaker
    rollcalls: list[dict[str, Any]] = []
    standby: list[dict[str, Any]] = []
    async with sessionmaker() as db:
        if who.kind == PrincipalKind.DEVICE:
            if who.duty_room_id is not None:
                row = (await db.execute(select(DutyRoom, Unit).join(Unit).where(
                    DutyRoom.id == who.duty_room_id))).first()
                if row is not None:
                    standby.append(_standby(*row))
        else:
            if who.may("conference.join"):
                records = (await db.execute(
                    select(RollCallRecord).where(within(RollCallRecord.unit_path, who),
                                                 RollCallRecord.phase.in_(OPEN_PHASES))
                    .order_by(RollCallRecord.id.desc()).limit(LIMIT))).scalars()
                rollcalls = [{"room": rollcall_room(r.id), "roll_call_id": r.id, "title": r.title,
                              "phase": r.phase, "kind": r.kind} for r in records]
            if who.may("conference.join") and who.may("rooms.read"):
                rows = (await db.execute(
                    select(DutyRoom, Unit).join(Unit).where(within(Unit.path, who), DutyRoom.active.is_(True))
                    .order_by(Unit.path, DutyRoom.id).limit(LIMIT))).all()
                standby = [_standby(room, unit) for room, unit in rows]
    return web.json_response({"rollcalls": rollcalls, "standby": standby})


def _standby(room: DutyRoom, unit: Unit) -> dict[str, Any]:
    return {"room": standby_room(room.id), "duty_room_id": room.id, "name": room.name, "unit": unit.name}


class RoomNames:
    """One signalling socket's lookups: the human name of each managed room it was let into."""

    def __init__(self, app: web.Application, who: Principal) -> None:
        self.app = app
        self.who = who
        self.titles: dict[str, str] = {}

    async def may_join(self, room: str, allowed: Awaitable[bool]) -> bool:
        """``allowed`` (the real decision), then, if allowed, the room's name for ``joined``."""
        if not await allowed:
            return False
        managed = parse_room(room)
        if managed is not None:
            async with self.app[SERVICES].sessionmaker() as db:
                if managed.kind is RoomKind.ROLLCALL:
                    record = await db.get(RollCallRecord, managed.id)
                    title = record.title if record is not None else None
                else:
                    room_row = await db.get(DutyRoom, managed.id)
                    title = room_row.name if room_row is not None else None
            if title:
                if len(self.titles) > 64:
                    self.titles.clear()
                self.titles[room] = title
        return True

    def room_info(self, room: str, described: Callable[[str], dict[str, Any] | None]) -> dict[str, Any] | None:
        info = described(room)
        if info is not None and room in self.titles:
            info = {**info, "title": self.titles[room]}
        return info


def name_rooms(peer: Any, app: web.Application, who: Principal) -> RoomNames:
    """Make a signalling peer's ``joined.room_info`` carry the room's title (wrapping the
    ``may_join`` and ``room_info`` it was built with)."""
    names = RoomNames(app, who)
    decide, describe = peer.may_join, peer.room_info
    if decide is not None:
        peer.may_join = lambda room: names.may_join(room, decide(room))
    if describe is not None:
        peer.room_info = lambda room: names.room_info(room, describe)
    return names
