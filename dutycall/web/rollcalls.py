"""Roll-call routes and the console's "到" over signalling. Each handler: who, check, delegate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from .. import errors
from ..conference import InvalidRequest, InvalidState, SignallingPeer
from ..directory.errors import DirectoryError
from ..directory.principal import Principal
from ..errors import DutycallError
from ..rollcall.commands import ACTIONS
from ..rollcall.naming import RoomKind, parse_room, rollcall_room
from ..rollcall.picker import RoomPicker
from ..rollcall.presence import duty_room_of
from .auth import as_signalling, document, json_body, parse_int, path_int, principal_of
from .keys import COORDINATOR, DIRECTORY, PLANS, RESULTS, STATISTICS

routes = web.RouteTableDef()


def _id(request: web.Request) -> int:
    return path_int(request, "id")


def _picker(request: web.Request) -> RoomPicker:
    return RoomPicker(request.app[COORDINATOR].store.sessionmaker)


@routes.get("/api/rollcalls")
async def rollcall_history(request: web.Request) -> web.Response:
    limit = parse_int(request.query.get("limit", "50"), "limit")
    return web.json_response(await _picker(request).history(principal_of(request), limit))


@routes.post("/api/rollcalls/precheck")
async def rooms_precheck(request: web.Request) -> web.Response:
    data = await json_body(request)
    return web.json_response(await request.app[COORDINATOR].precheck_rooms(principal_of(request),
                                                                            data.get("room_ids")))


@routes.get("/api/rollcall-picker")
async def rollcall_picker(request: web.Request) -> web.Response:
    return web.json_response(await _picker(request).tree(principal_of(request)))


@routes.get("/api/room-groups")
async def list_room_groups(request: web.Request) -> web.Response:
    return web.json_response(await _picker(request).groups(principal_of(request)))


@routes.post("/api/room-groups")
async def save_room_group(request: web.Request) -> web.Response:
    return web.json_response(await _picker(request).save_group(principal_of(request), await json_body(request)))


@routes.delete("/api/room-groups/{id}")
async def delete_room_group(request: web.Request) -> web.Response:
    return web.json_response(await _picker(request).delete_group(principal_of(request), _id(request)))


@routes.post("/api/plans/preview")
async def preview_plan(request: web.Request) -> web.Response:
    return web.json_response(await request.app[PLANS].preview(principal_of(request), await json_body(request)))


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
        raise errors.NotFound("web.no_such_action", action=action[:64])
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
    return document(body, f"rollcall-{_id(request)}.csv")


@routes.get("/api/rollcalls/{id}/sheet.xlsx")
async def rollcall_sheet_xlsx(request: web.Request) -> web.Response:
    body = await request.app[RESULTS].sheet_xlsx(principal_of(request), _id(request))
    return document(body, f"rollcall-{_id(request)}.xlsx")


@routes.get("/api/rollcalls/{id}/sheet.pdf")
async def rollcall_sheet_pdf(request: web.Request) -> web.Response:
    body = await request.app[RESULTS].sheet_pdf(principal_of(request), _id(request))
    return document(body, f"rollcall-{_id(request)}.pdf")


@routes.get("/api/statistics")
async def statistics(request: web.Request) -> web.Response:
    return web.json_response(await request.app[STATISTICS].monthly(principal_of(request), request.query.get("month")))


@routes.get("/api/statistics/trend.png")
async def statistics_trend(request: web.Request) -> web.Response:
    body = await request.app[STATISTICS].trend_png(principal_of(request), request.query.get("month"))
    return web.Response(body=body, content_type="image/png")


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


async def may_join(app: web.Application, who: Any, room: str) -> bool:
    """A roll-call's room is open to its target consoles and to accounts whose scope covers it;
    a duty room's standby room to its own console and to accounts that may see that room."""
    managed = parse_room(room)
    if managed is None:
        return False  # only standby and roll-call rooms are decided here (rooms.is_free_form)
    if managed.kind is RoomKind.STANDBY:
        if who.kind == "device":
            return bool(who.duty_room_id == managed.id)
        try:
            await app[DIRECTORY].get_room(who, managed.id)
        except DirectoryError:
            return False
        return True
    return await app[COORDINATOR].may_join(who, managed.id)


def room_info(room: str) -> dict[str, Any] | None:
    """What a client is told of a room it joined (``joined.room_info``): a roll-call's or a
    standby room, with the id it names; None for a free-form meeting room."""
    managed = parse_room(room)
    return managed.describe() if managed is not None else None


def signalling_extensions(app: web.Application) -> dict[str, Any]:
    """Signalling messages for roll-calls, added to the conference protocol."""
    coordinator = app[COORDINATOR]

    async def answer(peer: SignallingPeer, msg: dict[str, Any]) -> dict[str, Any]:
        room = peer.room_name  # None unless in a room now
        if room is None or peer.participant is None:
            raise InvalidState("web.answer_join_first")
        duty_room_id = duty_room_of(peer.participant.tag)
        if duty_room_id is None:
            raise InvalidState("web.answer_console_only")
        roll_call_id = msg.get("roll_call_id")
        if not isinstance(roll_call_id, int) or isinstance(roll_call_id, bool):
            raise InvalidRequest("web.answer_roll_call_id")
        if room != rollcall_room(roll_call_id):
            raise InvalidState("web.answer_own_room")
        try:
            # The person who answers: one of the rostered names the ring offered, or another named.
            await coordinator.answer(roll_call_id, duty_room_id, msg.get("officer"))
        except errors.DutycallError as exc:
            raise as_signalling(exc) from exc
        return {"type": "rollcall_answered", "roll_call_id": roll_call_id, "duty_room_id": duty_room_id}

    return {"rollcall_answer": answer}


class BoardFollowing:
    """One signalling socket's following of a roll-call board (``rollcall_follow``): an account
    whose scope covers the roll-call is sent ``rollcall_board`` after every change; a console,
    or anyone the roll-call is out of scope for, is refused and sent nothing. One roll-call at
    a time per socket; it ends with the socket (whose access the server re-checks, see live.py)."""

    def __init__(self, app: web.Application, who: Principal, send: Callable[[dict[str, Any]], None]) -> None:
        self.coordinator = app[COORDINATOR]
        self.who = who
        self.send = send
        self._unfollow: Callable[[], None] | None = None
        self._unwatch: Callable[[], None] | None = None
        self._watch_seq = 0
        self._closed = False

    def extensions(self) -> dict[str, Any]:
        return {"rollcall_follow": self.follow, "rollcall_precheck_watch": self.watch_precheck}

    async def watch_precheck(self, peer: SignallingPeer, msg: dict[str, Any]) -> dict[str, Any]:
        """The pre-check of the rooms a host picked (``room_ids``, as POST /api/rollcalls/precheck),
        then ``rollcall_precheck`` events with each room whose readiness changed, until the socket
        closes or another watch replaces this one ([] watches nothing)."""
        self._watch_seq += 1
        seq = self._watch_seq
        sent = self.send

        def tell(changed: dict[int, list[str]]) -> None:
            sent({"type": "rollcall_precheck", "rooms": [
                {"duty_room_id": room_id, "ready": not problems, "problems": problems}
                for room_id, problems in changed.items()]})

        try:
            report, unwatch = await self.coordinator.watch_readiness(self.who, msg.get("room_ids"), tell)
        except DutycallError as exc:
            raise as_signalling(exc) from exc
        if seq != self._watch_seq or self._closed:  # replaced (or the socket closed) while it was read
            unwatch()
            return {"type": "rollcall_precheck_watching", "rooms": report}
        self._stop_watch()
        self._unwatch = unwatch
        return {"type": "rollcall_precheck_watching", "rooms": report}

    def _stop_watch(self) -> None:
        unwatch, self._unwatch = self._unwatch, None
        if unwatch is not None:
            unwatch()

    async def follow(self, peer: SignallingPeer, msg: dict[str, Any]) -> dict[str, Any]:
        roll_call_id = msg.get("roll_call_id")
        if not isinstance(roll_call_id, int) or isinstance(roll_call_id, bool):
            raise InvalidRequest("web.answer_roll_call_id")
        # Followed before the board is read, so no change between the two is missed; undone
        # at once if the board is not this principal's to see (the roll-call followed so far,
        # if any, stays followed then).
        unfollow = self.coordinator.follow(roll_call_id, lambda board: self.send(
            {"type": "rollcall_board", "roll_call_id": roll_call_id, "board": board}))
        try:
            board = await self.coordinator.board(self.who, roll_call_id)
        except DutycallError as exc:
            unfollow()
            raise as_signalling(exc) from exc
        except BaseException:
            unfollow()
            raise
        self.close()
        self._unfollow = unfollow
        return {"type": "rollcall_following", "roll_call_id": roll_call_id, "board": board}

    def close(self) -> None:
        """Stop following (idempotent)."""
        unfollow, self._unfollow = self._unfollow, None
        if unfollow is not None:
            unfollow()

    def close_all(self) -> None:
        """The socket closed: stop following and watching (idempotent)."""
        self._closed = True
        self.close()
        self._stop_watch()
