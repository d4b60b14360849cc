"""Roll-call routes and the console's "到" over signalling. Each handler: who, check, delegate."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..conference import InvalidRequest, InvalidState, SignallingPeer
from ..conference import NotFound as ConferenceNotFound
from ..directory.errors import DirectoryError, Invalid
from ..rollcall.commands import ACTIONS
from ..rollcall.machine import IllegalEvent
from ..rollcall.presence import conference_room, duty_room_of
from .auth import json_body, parse_int, principal_of
from .keys import COORDINATOR, DIRECTORY, PLANS, RESULTS, STATISTICS

routes = web.RouteTableDef()


def _id(request: web.Request) -> int:
    try:
        return parse_int(request.match_info["id"], "id")
    except Invalid as exc:
        raise web.HTTPNotFound() from exc


@routes.post("/api/rollcalls")
async def create_rollcall(request: web.Request) -> web.Response:
    created = await request.app[COORDINATOR].create(principal_of(request), await json_body(request))
    return web.json_response(created, status=201)


@routes.get("/api/rollcalls/{id}")
async def rollcall_board(request: web.Request) -> web.Response:
    return web.json_response(await request.app[COORDINATOR].board(principal_of(request), _id(request)))


@routes.post("/api/rollcalls/{id}/{action}")
async def rollcall_command(request: web.Request) -> web.Response:
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise web.HTTPNotFound()
    # body_exists, not can_read_body: the body-deadline middleware has already read it.
    data = await json_body(request) if request.body_exists else {}
    return web.json_response(await request.app[COORDINATOR].command(principal_of(request), _id(request), action, data))


@routes.get("/api/rollcalls/{id}/precheck")
async def rollcall_precheck(request: web.Request) -> web.Response:
    return web.json_response(await request.app[COORDINATOR].precheck(principal_of(request), _id(request)))


@routes.get("/api/plans/{id}/precheck")
async def plan_precheck(request: web.Request) -> web.Response:
    return web.json_response(await request.app[PLANS].precheck(principal_of(request), _id(request)))


@routes.get("/api/rollcalls/{id}/sheet.csv")
async def rollcall_sheet_csv(request: web.Request) -> web.Response:
    body = await request.app[RESULTS].sheet_csv(principal_of(request), _id(request))
    return web.Response(body=body, content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="rollcall-{_id(request)}.csv"'})


@routes.get("/api/rollcalls/{id}/sheet.xlsx")
async def rollcall_sheet_xlsx(request: web.Request) -> web.Response:
    body = await request.app[RESULTS].sheet_xlsx(principal_of(request), _id(request))
    return web.Response(body=body, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="rollcall-{_id(request)}.xlsx"'})


@routes.get("/api/rollcalls/{id}/sheet.pdf")
async def rollcall_sheet_pdf(request: web.Request) -> web.Response:
    body = await request.app[RESULTS].sheet_pdf(principal_of(request), _id(request))
    return web.Response(body=body, content_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="rollcall-{_id(request)}.pdf"'})


@routes.get("/api/statistics")
async def statistics(request: web.Request) -> web.Response:
    return web.json_response(await request.app[STATISTICS].monthly(principal_of(request), request.query.get("month")))


@routes.get("/api/statistics/trend.png")
async def statistics_trend(request: web.Request) -> web.Response:
    body = await request.app[STATISTICS].trend_png(principal_of(request), request.query.get("month"))
    return web.Response(body=body, content_type="image/png")


@routes.get("/api/notices")
async def list_notices(request: web.Request) -> web.Response:
    return web.json_response(await request.app[RESULTS].notices(principal_of(request)))


@routes.post("/api/notices/{id}/respond")
async def respond_notice(request: web.Request) -> web.Response:
    data = await json_body(request)
    return web.json_response(await request.app[RESULTS].respond(principal_of(request), _id(request),
                                                                data.get("response")))


@routes.post("/api/notices/{id}/close")
async def close_notice(request: web.Request) -> web.Response:
    return web.json_response(await request.app[RESULTS].close(principal_of(request), _id(request)))


@routes.get("/api/plans")
async def list_plans(request: web.Request) -> web.Response:
    return web.json_response(await request.app[PLANS].list_plans(principal_of(request)))


@routes.post("/api/plans")
async def create_plan(request: web.Request) -> web.Response:
    return web.json_response(await request.app[PLANS].create(principal_of(request), await json_body(request)),
                             status=201)


@routes.get("/api/plans/{id}/upcoming")
async def plan_upcoming(request: web.Request) -> web.Response:
    return web.json_response(await request.app[PLANS].upcoming(principal_of(request), _id(request)))


@routes.patch("/api/plans/{id}")
async def update_plan(request: web.Request) -> web.Response:
    return web.json_response(await request.app[PLANS].update(principal_of(request), _id(request),
                                                             await json_body(request)))


@routes.delete("/api/plans/{id}")
async def delete_plan(request: web.Request) -> web.Response:
    return web.json_response(await request.app[PLANS].delete(principal_of(request), _id(request)))


@routes.get("/api/rooms/{id}/rollcalls.ics")
async def room_rollcalls_calendar(request: web.Request) -> web.Response:
    body = await request.app[PLANS].room_calendar(principal_of(request), _id(request))
    return web.Response(body=body, content_type="text/calendar", charset="utf-8")


STANDBY_PREFIX = "standby-"


def standby_room(duty_room_id: int) -> str:
    """Where a duty room's console waits between roll-calls, seen and reachable."""
    return f"{STANDBY_PREFIX}{duty_room_id}"


async def may_join(app: web.Application, who: Any, room: str) -> bool:
    """A roll-call's room is open to its target consoles and to accounts whose scope covers it;
    a duty room's standby room to its own console and to accounts that may see that room."""
    if room.startswith(STANDBY_PREFIX):
        try:
            duty_room_id = int(room[len(STANDBY_PREFIX):])
        except ValueError:
            return False
        if who.kind == "device":
            return who.duty_room_id == duty_room_id
        try:
            await app[DIRECTORY].get_room(who, duty_room_id)
        except DirectoryError:
            return False
        return True
    if not room.startswith("rollcall-"):
        return False  # only standby and roll-call rooms are decided here (rooms.is_free_form)
    try:
        roll_call_id = int(room[len("rollcall-"):])
    except ValueError:
        return False
    return await app[COORDINATOR].may_join(who, roll_call_id)


def signalling_extensions(app: web.Application) -> dict[str, Any]:
    """Signalling messages for roll-calls, added to the conference protocol."""
    coordinator = app[COORDINATOR]

    async def answer(peer: SignallingPeer, msg: dict[str, Any]) -> dict[str, Any]:
        room = peer.room_name  # None unless in a room now
        if room is None or peer.participant is None:
            raise InvalidState("join the roll-call's room first")
        duty_room_id = duty_room_of(peer.participant.tag)
        if duty_room_id is None:
            raise InvalidState("only a duty room's console can answer a roll-call")
        roll_call_id = msg.get("roll_call_id")
        if not isinstance(roll_call_id, int) or isinstance(roll_call_id, bool):
            raise InvalidRequest("'roll_call_id' must be an integer")
        if room != conference_room(roll_call_id):
            raise InvalidState("answer from the roll-call's own room")
        try:
            # The person who answers: one of the rostered names the ring offered, or another named.
            await coordinator.answer(roll_call_id, duty_room_id, msg.get("officer"))
        except IllegalEvent as exc:
            raise InvalidState(str(exc)) from exc
        except Invalid as exc:
            raise InvalidRequest(str(exc)) from exc
        except DirectoryError as exc:
            raise ConferenceNotFound(str(exc)) from exc
        return {"type": "rollcall_answered", "roll_call_id": roll_call_id, "duty_room_id": duty_room_id}

    return {"rollcall_answer": answer}
