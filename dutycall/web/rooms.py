"""Who may enter which conference room.

- ``standby-<duty room id>`` and ``rollcall-<id>``: decided by the roll-call rules
  (:func:`rollcalls.may_join`): the room's own console and accounts whose scope covers it.
- ``greeting-<id>``: a live leadership greeting (``greetings/naming.py``): its target rooms'
  consoles and accounts that may read greetings whose scope covers it (``Greetings.may_join``).
- ``footage-<incident id>``: an incident's live footage (``media/naming.py``): accounts that may
  read incidents and whose scope covers the incident's unit (``Ingest.may_watch``).
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
from typing import Any

from aiohttp import web

from ..directory.errors import Forbidden, Invalid, NotFound
from ..directory.principal import Principal
from ..media.naming import parse_footage_room
from ..rollcall.naming import parse_room
from . import footage, greetings, rollcalls
from .auth import json_body, principal_of
from .keys import DIRECTORY, FREE_ROOMS

ROOM_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
routes = web.RouteTableDef()


def is_free_form(name: str) -> bool:
    """Not a standby, roll-call or footage room (named by :mod:`dutycall.rollcall.naming` and
    :mod:`dutycall.media.naming`)."""
    return parse_room(name) is None and parse_footage_room(name) is None and not greetings.is_greeting_room(name)


async def may_join(app: web.Application, who: Principal, name: str) -> bool:
    if greetings.is_greeting_room(name):
        return await greetings.may_join(app, who, name)  # a live greeting's leader and target consoles
    if parse_footage_room(name) is not None:
        return await app[footage.INGEST].may_watch(who, name)
    if not is_free_form(name):
        return await rollcalls.may_join(app, who, name)
    return app[FREE_ROOMS].may_join(who, name)


@routes.post("/api/conference-rooms/{name}/invites")
async def invite(request: web.Request) -> web.Response:
    """A host in a free-form room lets one more account or duty room's console in."""
    who = principal_of(request)
    name = request.match_info["name"]
    if not ROOM_NAME.match(name) or not is_free_form(name):
        raise NotFound("web.invite_free_form_only")
    if not who.may("conference.create"):
        raise Forbidden("web.invite_forbidden")
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
        raise Invalid("web.invite_whom")
    request.app[FREE_ROOMS].invite(who, name, invitee)
    return web.json_response({"room": name, "invited": described}, status=201)
