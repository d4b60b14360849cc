"""Who may enter which conference room.

- ``standby-<duty room id>`` and ``rollcall-<id>``: decided by the roll-call rules
  (:func:`rollcalls.may_join`): the room's own console and accounts whose scope covers it.
- Any other name is a *free-form* room: a meeting of command staff. Only accounts that may
  host (admin, host, leader: the ``conference.create`` permission) open one; the first to join
  owns it while it exists, and after that it admits command staff whose scope covers the
  owner's unit, plus whoever a host in the room invited by name (an account or a duty room's
  console in the inviter's scope). Consoles, duty officers and viewers cannot wander into a
  meeting, and no one can sit unseen in another district's room. Invitations live as long as
  the room does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ..conference import Conference
from ..directory.errors import Forbidden, Invalid, NotFound
from ..directory.principal import Principal
from . import rollcalls
from .auth import DIRECTORY, json_body, principal_of

ROOM_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
routes = web.RouteTableDef()


@dataclass
class FreeRoom:
    owner_unit_path: str
    invited: set[tuple[str, int]] = field(default_factory=set)


class FreeRooms:
    """Owners and invitations of the free-form rooms that exist now."""

    def __init__(self, conference: Conference) -> None:
        self.conference = conference
        self._rooms: dict[str, FreeRoom] = {}

    def get(self, name: str) -> FreeRoom | None:
        room = self.conference.rooms.get(name)
        if room is None or room.closed or not room.participants:
            self._rooms.pop(name, None)  # the room is gone: so are its owner and invitations
            return None
        return self._rooms.get(name)

    def may_join(self, who: Principal, name: str) -> bool:
        existing = self.get(name)
        if existing is None:
            if not who.may("conference.create"):
                return False
            self._rooms[name] = FreeRoom(who.unit_path)
            return True
        if (who.kind, who.duty_room_id if who.kind == "device" else who.id) in existing.invited:
            return True
        return who.may("conference.create") and who.covers(existing.owner_unit_path)

    def invite(self, who: Principal, name: str, invitee: tuple[str, int]) -> None:
        existing = self.get(name)
        if existing is None or not who.may("conference.create") or not who.covers(existing.owner_unit_path):
            raise NotFound(f"没有名为 {name!r} 的会议室，或不在您的管辖范围内")
        existing.invited.add(invitee)


FREE_ROOMS = web.AppKey("free_rooms", FreeRooms)


def is_free_form(name: str) -> bool:
    for prefix in (rollcalls.STANDBY_PREFIX, "rollcall-"):
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            return False
    return True


async def may_join(app: web.Application, who: Principal, name: str) -> bool:
    if not is_free_form(name):
        return await rollcalls.may_join(app, who, name)
    return app[FREE_ROOMS].may_join(who, name)


@routes.post("/api/conference-rooms/{name}/invites")
async def invite(request: web.Request) -> web.Response:
    """A host in a free-form room lets one more account or duty room's console in."""
    who = principal_of(request)
    name = request.match_info["name"]
    if not ROOM_NAME.match(name) or not is_free_form(name):
        raise NotFound("只能邀请进入自由会议室")
    if not who.may("conference.create"):
        raise Forbidden("没有邀请他人进入会议室的权限")
    data = await json_body(request)
    account_id, duty_room_id = data.get("account_id"), data.get("duty_room_id")
    invitee: tuple[str, int]
    described: dict[str, Any]
    if isinstance(account_id, int) and not isinstance(account_id, bool) and duty_room_id is None:
        described = await request.app[DIRECTORY].account_in_scope(who, account_id)
        invitee = ("account", account_id)
    elif isinstance(duty_room_id, int) and not isinstance(duty_room_id, bool) and account_id is None:
        described = await request.app[DIRECTORY].get_room(who, duty_room_id)
        invitee = ("device", duty_room_id)
    else:
        raise Invalid("请给出 account_id 或 duty_room_id 之一（整数）")
    request.app[FREE_ROOMS].invite(who, name, invitee)
    return web.json_response({"room": name, "invited": described}, status=201)
