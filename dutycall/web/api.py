"""The JSON API (described by /api/openapi.json). Each handler: who, check, delegate."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import timezone
from ..directory.errors import Invalid
from ..directory.principal import PERMISSIONS, Principal
from ..directory.roster import MAX_UPLOAD_BYTES
from ..directory.service import DEVICE_SESSION_TTL, SESSION_TTL
from ..messages import Msg
from ..rollcall.naming import standby_room
from .auth import (
    DIRECTORY,
    ROSTER,
    SESSION_COOKIE,
    SIGN_IN_LIMITER,
    error_response,
    json_body,
    parse_int,
    path_int,
    principal_of,
    set_session_cookie,
)
from .clients import client_address

routes = web.RouteTableDef()


def _int(request: web.Request, name: str) -> int:
    return path_int(request, name)


def _query_int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    return parse_int(value, name)


def ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


# -- sessions ------------------------------------------------------------------------------

def session_reply(principal: Principal) -> dict[str, Any]:
    """Who is signed in, and the CSRF token; a duty room's console also learns the name of
    its standby room (the page never makes room names itself)."""
    described: dict[str, Any] = dict(principal.describe())
    # What the pages offer this principal (buttons appear only for those who may use them).
    described["permissions"] = sorted(p for p in PERMISSIONS if principal.may(p))
    # The deployment's zone (--timezone): pages show every time in it, not the browser's.
    described["timezone"] = timezone.zone_name()
    if principal.kind == "device" and principal.duty_room_id is not None:
        described["standby_room"] = standby_room(principal.duty_room_id)
    return {"principal": described, "csrf_token": principal.csrf_token}


@routes.post("/api/session")
async def sign_in(request: web.Request) -> web.Response:
    data = await json_body(request)
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or len(username) > 128 or len(password) > 1024:
        raise Invalid("web.sign_in_fields")
    limiter = request.app[SIGN_IN_LIMITER]
    client = client_address(request)
    with limiter.attempt(client, username):  # 429 over this client's or this name's share
        token, principal = await request.app[DIRECTORY].sign_in(username, password, client=client)
        limiter.succeeded(client)
    response = ok(session_reply(principal))
    set_session_cookie(request, response, token, int(SESSION_TTL.total_seconds()))
    return response


@routes.post("/api/device-session")
async def device_sign_in(request: web.Request) -> web.Response:
    data = await json_body(request)
    device_token = data.get("token")
    if not isinstance(device_token, str):
        raise Invalid("web.token_required", field="token")
    token, principal = await request.app[DIRECTORY].device_sign_in(device_token)
    response = ok(session_reply(principal))
    set_session_cookie(request, response, token, int(DEVICE_SESSION_TTL.total_seconds()))
    return response


@routes.delete("/api/session")
async def sign_out(request: web.Request) -> web.Response:
    await request.app[DIRECTORY].sign_out(principal_of(request))
    response = ok({"signed_out": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    principal = principal_of(request)
    return ok(session_reply(principal))


# -- units and duty rooms ----------------------------------------------------------------------

@routes.get("/api/units")
async def list_units(request: web.Request) -> web.Response:
    inactive = request.query.get("include_inactive") == "1"
    return ok(await request.app[DIRECTORY].list_units(principal_of(request), inactive))


@routes.post("/api/units")
async def create_unit(request: web.Request) -> web.Response:
    return ok(await request.app[DIRECTORY].create_unit(principal_of(request), await json_body(request)), 201)


@routes.patch("/api/units/{id}")
async def update_unit(request: web.Request) -> web.Response:
    return ok(await request.app[DIRECTORY].update_unit(principal_of(request), _int(request, "id"),
                                                       await json_body(request)))


@routes.post("/api/units/{id}/move")
async def move_unit(request: web.Request) -> web.Response:
    data = await json_body(request)
    return ok(await request.app[DIRECTORY].move_unit(principal_of(request), _int(request, "id"), data.get("parent_id")))


@routes.post("/api/units/{id}/deactivate")
async def deactivate_unit(request: web.Request) -> web.Response:
    return ok(await request.app[DIRECTORY].set_unit_active(principal_of(request), _int(request, "id"), False))


@routes.post("/api/units/{id}/activate")
async def activate_unit(request: web.Request) -> web.Response:
    return ok(await request.app[DIRECTORY].set_unit_active(principal_of(request), _int(request, "id"), True))


@routes.get("/api/rooms")
async def list_rooms(request: web.Request) -> web.Response:
    return ok(await request.app[DIRECTORY].list_rooms(principal_of(request), _query_int(request, "unit_id")))


@routes.post("/api/rooms")
async def create_room(request: web.Request) -> web.Response:
    return ok(await request.app[DIRECTORY].create_room(principal_of(request), await json_body(request)), 201)


@routes.get("/api/rooms/{id}")
async def get_room(request: web.Request) -> web.Response:
    return ok(await request.app[DIRECTORY].get_room(principal_of(request), _int(request, "id")))


@routes.patch("/api/rooms/{id}")
async def update_room(request: web.Request) -> web.Response:
    return ok(await request.app[DIRECTORY].update_room(principal_of(request), _int(request, "id"),
                                                       await json_body(request)))


@routes.post("/api/rooms/{id}/deactivate")
async def deactivate_room(request: web.Request) -> web.Response:
    return ok(await request.app[DIRECTORY].update_room(principal_of(request), _int(request, "id"), {"active": False}))


@routes.post("/api/rooms/{id}/device-credentials")
async def create_device_credential(request: web.Request) -> web.Response:
    data = await json_body(request)
    label = data["label"] if isinstance(data.get("label"), str) else ""
    return ok(await request.app[DIRECTORY].create_device_credential(principal_of(request), _int(request, "id"),
                                                                    label), 201)


@routes.get("/api/rooms/{id}/device-credentials")
async def list_device_credentials(request: web.Request) -> web.Response:
    return ok(await request.app[DIRECTORY].list_device_credentials(principal_of(request), _int(request, "id")))


@routes.post("/api/device-credentials/{id}/revoke")
async def revoke_device_credential(request: web.Request) -> web.Response:
    await request.app[DIRECTORY].revoke_device_credential(principal_of(request), _int(request, "id"))
    return ok({"revoked": True})


# -- accounts, audit, contacts -------------------------------------------------------------------

@routes.get("/api/accounts")
async def list_accounts(request: web.Request) -> web.Response:
    return ok(await request.app[DIRECTORY].list_accounts(principal_of(request)))


@routes.post("/api/accounts")
async def create_account(request: web.Request) -> web.Response:
    return ok(await request.app[DIRECTORY].create_account(principal_of(request), await json_body(request)), 201)


@routes.patch("/api/accounts/{id}")
async def update_account(request: web.Request) -> web.Response:
    return ok(await request.app[DIRECTORY].update_account(principal_of(request), _int(request, "id"),
                                                          await json_body(request)))


@routes.get("/api/audit")
async def audit_log(request: web.Request) -> web.Response:
    return ok(await request.app[DIRECTORY].audit_log(principal_of(request), _query_int(request, "limit") or 200))


@routes.get("/api/contacts")
async def contacts(request: web.Request) -> web.Response:
    return ok(await request.app[DIRECTORY].search_contacts(principal_of(request), request.query.get("q", "")))


# -- roster ----------------------------------------------------------------------------------------

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _download(body: bytes, content_type: str, filename: str) -> web.Response:
    from urllib.parse import quote

    return web.Response(body=body, content_type=content_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})


@routes.get("/api/roster")
async def roster_shifts(request: web.Request) -> web.Response:
    q = request.query
    return ok(await request.app[ROSTER].shifts(principal_of(request), _query_int(request, "room_id"),
                                               q.get("start"), q.get("end")))


@routes.put("/api/roster/{room_id}/{date}")
async def roster_set_shift(request: web.Request) -> web.Response:
    return ok(await request.app[ROSTER].set_shift(principal_of(request), _int(request, "room_id"),
                                                  request.match_info["date"], await json_body(request)))


@routes.get("/api/roster/template.xlsx")
async def roster_template(request: web.Request) -> web.Response:
    q = request.query
    body = await request.app[ROSTER].template(principal_of(request), q.get("period"), q.get("start"), q.get("end"))
    return _download(body, XLSX, f"值班表模板-{q.get('period')}.xlsx")


@routes.post("/api/roster/upload")
async def roster_upload(request: web.Request) -> web.Response:
    who = principal_of(request)
    who.require("roster.write")  # before reading up to 5 MB from someone who may not upload at all
    # content.read(n) answers what has arrived, not n bytes: read() waits for the whole body, and
    # the application's client_max_size (just above the limit) stops a bigger one while it arrives.
    too_big = error_response(request, 413, "too_large", Msg("web.file_too_large", mb=MAX_UPLOAD_BYTES // (1024 * 1024)))
    if (request.content_length or 0) > MAX_UPLOAD_BYTES:
        return too_big
    body = await request.read()
    if len(body) > MAX_UPLOAD_BYTES:
        return too_big
    return ok(await request.app[ROSTER].upload(who, request.query.get("period"), body))


@routes.get("/api/roster/status")
async def roster_status(request: web.Request) -> web.Response:
    return ok(await request.app[ROSTER].status(principal_of(request), request.query.get("period")))


@routes.get("/api/roster/handbook.pdf")
async def roster_handbook(request: web.Request) -> web.Response:
    q = request.query
    body = await request.app[ROSTER].handbook_pdf(principal_of(request), q.get("period"), q.get("start"), q.get("end"))
    return _download(body, "application/pdf", f"值班手册-{q.get('period')}.pdf")


@routes.get("/api/rooms/{id}/roster.ics")
async def roster_calendar(request: web.Request) -> web.Response:
    body = await request.app[ROSTER].calendar(principal_of(request), _int(request, "id"))
    return web.Response(body=body, content_type="text/calendar", charset="utf-8")


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    from .openapi import spec

    return ok(spec())
