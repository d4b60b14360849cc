"""Supervision notice routes (roll-call and incident notices alike). Each handler: who, check, delegate."""

from __future__ import annotations

from aiohttp import web

from .auth import json_body, path_int, principal_of
from .keys import SUPERVISION

routes = web.RouteTableDef()


@routes.get("/api/notices")
async def list_notices(request: web.Request) -> web.Response:
    kind = request.query.get("kind") or None
    return web.json_response(await request.app[SUPERVISION].notices(principal_of(request), kind=kind))


@routes.post("/api/notices/{id}/respond")
async def respond_notice(request: web.Request) -> web.Response:
    data = await json_body(request)
    return web.json_response(await request.app[SUPERVISION].respond(
        principal_of(request), path_int(request, "id"), data.get("response")))


@routes.post("/api/notices/{id}/close")
async def close_notice(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SUPERVISION].close(principal_of(request), path_int(request, "id")))
