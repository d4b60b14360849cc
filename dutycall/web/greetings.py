"""Leadership greeting routes (``/api/greetings``) and the leader's page. Each handler: who,
check, delegate to :class:`dutycall.greetings.service.Greetings`."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from .. import errors
from ..conference import Participant
from ..greetings.naming import parse_greeting_room
from ..greetings.reports import Reports
from ..greetings.service import Greetings
from . import rollcalls
from .auth import document, json_body, path_int, principal_of
from .greeting_media import GREETING_MEDIA
from .keys import SERVICES

GREETINGS = web.AppKey("greetings", Greetings)
GREETING_REPORTS = web.AppKey("greeting_reports", Reports)
ACTIONS = ("start", "end", "cancel", "reply")
STATIC = pathlib.Path(__file__).parent / "static"
routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    """Install the greetings service, its routes and its scheduler (one call from ``create_app``)."""
    services = app[SERVICES]
    # Pre-recorded greetings play through the greeting videos' playouts (web/greeting_media.py, set up first).
    app[GREETINGS] = greetings = Greetings(services.sessionmaker, services.conference,
                                           playouts=app[GREETING_MEDIA].playouts)
    greetings.unattended_after = services.config.greeting_unattended_seconds
    app[GREETING_REPORTS] = Reports(greetings)
    app.router.add_get("/greetings", page)
    app.router.add_routes(routes)
    app.cleanup_ctx.append(_greetings)


async def _greetings(app: web.Application) -> AsyncIterator[None]:
    greetings = app[GREETINGS]
    await greetings.recover()
    scheduler = asyncio.ensure_future(greetings.run())
    yield
    scheduler.cancel()
    await asyncio.gather(scheduler, return_exceptions=True)
    await greetings.close()


def is_greeting_room(name: str) -> bool:
    return parse_greeting_room(name) is not None


async def may_join(app: web.Application, who: Any, name: str) -> bool:
    greeting_id = parse_greeting_room(name)
    return greeting_id is not None and await app[GREETINGS].may_join(who, greeting_id)


def room_info(app: web.Application, name: str, participant: Participant | None = None) -> dict[str, Any] | None:
    """What a client is told of the room it joined: a greeting's (with what ``participant``, the
    one joining, is to watch), else a roll-call's or standby room."""
    return rollcalls.room_info(name) or app[GREETINGS].room_info(name, participant)


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "greetings.html", headers={"Cache-Control": "no-cache"})


def _id(request: web.Request) -> int:
    return path_int(request, "id")


@routes.get("/api/greetings")
async def list_greetings(request: web.Request) -> web.Response:
    return web.json_response(await request.app[GREETINGS].list_greetings(principal_of(request)))


@routes.post("/api/greetings")
async def create_greeting(request: web.Request) -> web.Response:
    created = await request.app[GREETINGS].create(principal_of(request), await json_body(request))
    return web.json_response(created, status=201)


@routes.get("/api/greetings/upcoming")
async def upcoming_greetings(request: web.Request) -> web.Response:
    return web.json_response(await request.app[GREETINGS].upcoming(principal_of(request)))


@routes.get("/api/greetings/leaders")
async def greeting_leaders(request: web.Request) -> web.Response:
    return web.json_response(await request.app[GREETINGS].leaders(principal_of(request)))


@routes.get("/api/greetings/{id}")
async def greeting_detail(request: web.Request) -> web.Response:
    return web.json_response(await request.app[GREETINGS].detail(principal_of(request), _id(request)))


@routes.post("/api/greetings/{id}/{action}")
async def greeting_command(request: web.Request) -> web.Response:
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise errors.NotFound("web.no_such_action", action=action[:64])
    greeting_id = _id(request)
    data = await json_body(request) if request.body_exists else {}
    return web.json_response(await request.app[GREETINGS].command(principal_of(request), greeting_id, action, data))


@routes.get("/api/greetings/{id}/receipts.csv")
async def receipts_csv(request: web.Request) -> web.Response:
    body = await request.app[GREETING_REPORTS].csv(principal_of(request), _id(request))
    return document(body, f"greeting-{_id(request)}.csv")


@routes.get("/api/greetings/{id}/receipts.xlsx")
async def receipts_xlsx(request: web.Request) -> web.Response:
    body = await request.app[GREETING_REPORTS].xlsx(principal_of(request), _id(request))
    return document(body, f"greeting-{_id(request)}.xlsx")


@routes.get("/api/greetings/{id}/receipts.pdf")
async def receipts_pdf(request: web.Request) -> web.Response:
    body = await request.app[GREETING_REPORTS].pdf(principal_of(request), _id(request))
    return document(body, f"greeting-{_id(request)}.pdf")


@routes.get("/api/rooms/{id}/greetings.ics")
async def room_greetings_calendar(request: web.Request) -> web.Response:
    body = await request.app[GREETINGS].room_calendar(principal_of(request), _id(request))
    return web.Response(body=body, content_type="text/calendar", charset="utf-8")
