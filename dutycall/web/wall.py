"""The wall's routes (多画面, on the command page): which rooms a wall page looks at, and their
thumbnails (``media/wall.py``). Only accounts, only rooms in the account's scope.

- ``POST /api/wall/look`` ``{"viewer": "<the page's random id>", "rooms": [duty room ids]}``: the
  rooms this page has on screen now (at most 200), renewed by the page every few seconds; the
  server taps those rooms for keyframe thumbnails while any page looks (a lease of 10 s). Rooms
  out of the account's scope are dropped silently. The answer: for each room kept, when its
  latest picture was taken (``taken_at``, seconds since the epoch; null: none yet) and what
  stops it taking part (``problems``: offline, no_video, no_audio), with the server's ``now``.
  With ``"has": {"<room id>": taken_at}`` (the pictures the page shows; ``{}``: none), each room
  whose latest picture is newer than the page's also carries it (``jpeg``, base64): a wall's
  pictures come with its look, not one request each.
  At most ``wall_viewers_per_account`` (2) walls of one account look at once, and
  ``wall_viewers_max`` (50) on the server: a new one beyond is 429 with the reason.
- ``GET /api/wall/{id}/thumb.jpg``: that picture (``no-store``; ``X-Taken-At``); 404 out of
  scope, for a console, or before the first picture.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from .. import errors
from ..directory.principal import Principal, PrincipalKind
from ..media.wall import MAX_ROOMS, Thumbnails
from .auth import json_body, path_int, principal_of
from .keys import CONFERENCE, CONFIG, COORDINATOR, DIRECTORY

THUMBNAILS = web.AppKey("wall_thumbnails", Thumbnails)
#: Each account's rooms in scope, read at most this often (a wall asks for many pictures a second).
SCOPE_TTL = 5.0
_SCOPES = web.AppKey("wall_scopes", dict)
VIEWER = re.compile(r"^[A-Za-z0-9_-]{1,64}$", re.ASCII)

routes = web.RouteTableDef()


async def rooms_in_scope(request: web.Request, who: Principal) -> frozenset[int]:
    """The active duty rooms in ``who``'s scope (read again after ``SCOPE_TTL`` seconds, and at
    once for another session, account or unit). Consoles have none here: a duty room's PC must
    not watch other rooms."""
    if who.kind == PrincipalKind.DEVICE:
        return frozenset()
    cache: dict[tuple[Any, ...], tuple[frozenset[int], float]] = request.app[_SCOPES]
    key = (who.session_id, who.id, who.unit_path, who.role)
    now = time.monotonic()
    hit = cache.get(key)
    if hit is not None and hit[1] > now:
        return hit[0]
    rooms = frozenset(room["id"] for room in await request.app[DIRECTORY].list_rooms(who))
    if len(cache) > 1000:
        for stale in [k for k, (_, until) in cache.items() if until <= now]:
            del cache[stale]
    cache[key] = (rooms, now + SCOPE_TTL)
    return rooms


@routes.post("/api/wall/look")
async def look(request: web.Request) -> web.Response:
    who = principal_of(request)
    if who.kind == PrincipalKind.DEVICE:
        raise errors.Forbidden("wall.consoles_no")
    data = await json_body(request)
    viewer, rooms = data.get("viewer"), data.get("rooms")
    if not isinstance(viewer, str) or not VIEWER.match(viewer):
        raise errors.Invalid("wall.viewer", field="viewer")
    if (not isinstance(rooms, list) or len(rooms) > MAX_ROOMS
            or not all(isinstance(r, int) and not isinstance(r, bool) for r in rooms)):
        raise errors.Invalid("wall.rooms", field="rooms", max=MAX_ROOMS)
    has = data.get("has")
    if has is not None and (not isinstance(has, dict) or len(has) > MAX_ROOMS or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in has.values())):
        raise errors.Invalid("wall.rooms", field="has", max=MAX_ROOMS)
    scope = await rooms_in_scope(request, who)
    shown = [r for r in dict.fromkeys(rooms) if r in scope]
    thumbnails = request.app[THUMBNAILS]
    thumbnails.look(f"{who.session_id}:{who.id}:{viewer}", shown, who.id)  # TooMany (429) past the caps
    readiness = request.app[COORDINATOR].readiness(shown)
    answer = []
    for room_id in shown:
        thumb = thumbnails.thumb(room_id)
        room: dict[str, Any] = {"duty_room_id": room_id, "taken_at": thumb.taken_at if thumb else None,
                                "problems": readiness.get(room_id, [])}
        # With ``has``, each newer picture comes in the answer: one request per look instead of
        # one per picture (every request's sign-in check costs more than its picture).
        if has is not None and thumb is not None and has.get(str(room_id)) != thumb.taken_at:
            room["jpeg"] = base64.b64encode(thumb.jpeg).decode("ascii")
        answer.append(room)
    return web.json_response({"now": time.time(), "rooms": answer}, headers={"Cache-Control": "no-store"})


@routes.get("/api/wall/{id}/thumb.jpg")
async def thumb(request: web.Request) -> web.Response:
    who = principal_of(request)
    room_id = path_int(request, "id")
    if room_id not in await rooms_in_scope(request, who):
        raise errors.NotFound("wall.room_not_found", id=room_id)
    picture = request.app[THUMBNAILS].thumb(room_id)
    if picture is None:
        raise errors.NotFound("wall.no_picture", id=room_id)
    return web.Response(body=picture.jpeg, content_type="image/jpeg",
                        headers={"Cache-Control": "no-store", "X-Taken-At": f"{picture.taken_at:.3f}"})


def setup(app: web.Application) -> None:
    config = app[CONFIG]
    app[THUMBNAILS] = Thumbnails(app[CONFERENCE], max_per_account=config.wall_viewers_per_account,
                                 max_viewers=config.wall_viewers_max)
    app[_SCOPES] = {}
    app.router.add_routes(routes)
    app.cleanup_ctx.append(_thumbnails)


async def _thumbnails(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[THUMBNAILS].close()
