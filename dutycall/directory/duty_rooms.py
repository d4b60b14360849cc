"""Duty rooms: list, read, create, edit, move, deactivate."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from .base import DirectoryBase
from .errors import Invalid
from .fields import phone_field, pinyin_key, text_field
from .models import DutyRoom, Unit
from .principal import Principal, PrincipalKind
from .scope import room_in_scope, unit_in_scope, within
from .shapes import room_json


class DutyRooms(DirectoryBase):
    """Duty rooms: list, read, create, edit, move, deactivate."""

    # -- duty rooms ----------------------------------------------------------------------

    async def list_rooms(self, who: Principal, unit_id: int | None = None) -> list[dict[str, Any]]:
        who.require("rooms.read")
        async with self.sessionmaker() as db:
            query = select(DutyRoom).join(Unit).where(within(Unit.path, who), DutyRoom.active.is_(True))
            if unit_id is not None:
                unit = await unit_in_scope(db, who, unit_id)
                query = query.where(DutyRoom.unit_id == unit.id)
            if who.kind == PrincipalKind.DEVICE:
                query = query.where(DutyRoom.id == who.duty_room_id)
            rooms = (await db.execute(query.order_by(DutyRoom.id))).scalars().all()
        return [room_json(r) for r in rooms]

    async def get_room(self, who: Principal, room_id: int) -> dict[str, Any]:
        who.require("rooms.read")
        async with self.sessionmaker() as db:
            return room_json(await room_in_scope(db, who, room_id))

    async def create_room(self, who: Principal, data: dict[str, Any]) -> dict[str, Any]:
        who.require("rooms.write")
        name = text_field(data, "name", 128)
        phone = phone_field(data)
        location = text_field(data, "location", 256, required=False)
        async with self.sessionmaker() as db:
            unit = await unit_in_scope(db, who, data.get("unit_id"))
            room = DutyRoom(unit_id=unit.id, name=name, phone=phone, location=location, name_pinyin=pinyin_key(name))
            db.add(room)
            await db.flush()
            self.audit(db, who, "create", "duty_room", room.id, unit.path, name=name)
            await db.commit()
            return room_json(room)

    async def update_room(self, who: Principal, room_id: int, data: dict[str, Any]) -> dict[str, Any]:
        who.require("rooms.write")
        async with self.sessionmaker() as db:
            room = await room_in_scope(db, who, room_id)
            changes: dict[str, Any] = {}
            if "name" in data:
                room.name = changes["name"] = text_field(data, "name", 128)
                room.name_pinyin = pinyin_key(room.name)
            if "phone" in data:
                room.phone = changes["phone"] = phone_field(data)
            if "location" in data:
                room.location = changes["location"] = text_field(data, "location", 256, required=False)
            if "unit_id" in data:
                unit = await unit_in_scope(db, who, data["unit_id"])
                room.unit_id = changes["unit_id"] = unit.id
            if "active" in data:
                if not isinstance(data["active"], bool):
                    raise Invalid("field.boolean", field="active", name="active")
                room.active = changes["active"] = data["active"]
            room_unit = await db.get(Unit, room.unit_id)
            self.audit(db, who, "update", "duty_room", room.id, room_unit.path if room_unit else "/", **changes)
            await db.commit()
        if "active" in changes or "unit_id" in changes or "name" in changes:
            self._access_changed()
        return room_json(room)
