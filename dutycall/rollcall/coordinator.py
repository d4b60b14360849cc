"""The roll-call coordinator: drives the pure machine, commits every change, carries out effects.

One coordinator per server. For each live roll-call it holds the machine's value, a lock
(events are applied one at a time) and the timers. Every accepted event is committed —
the machine's state and the attendance rows it records — before any effect is carried
out, so a server killed at any moment restarts with everything recorded so far, once.

Each command is one unit of work (``store.begin()``): the roll-call row is read at most
once, and scope, the event and the board the host sees are decided in the same session.
Consoles take part through the roll-call's conference room (:mod:`.naming`, :mod:`.presence`).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..conference import Conference, Participant, Publication
from ..directory.principal import Principal
from . import machine
from .clock import Clock, as_clock
from .commands import Call, CreateRollCall, HostCommand, Owner, Start, parse_command, parse_create, parse_officer
from .effects import EffectHandlers, EventOf, LiveRollCall
from .errors import Forbidden, Invalid, NotFound
from .machine import IllegalEvent
from .models import RollCallRecord
from .naming import RoomKind, parse_room, rollcall_room
from .observers import BoardFollowers, BoardObserver, ReadinessObserver, ReadinessWatchers
from .presence import Presence, duty_room_of
from .store import RollCallStore, UnitOfWork, from_json, room_ids_of

T = TypeVar("T")

#: Seconds between looks at the 在线 of followed boards: a camera or microphone that stops (or
#: starts) delivering without unpublishing changes nothing but the clock.
BOARD_READINESS_INTERVAL = 1.0


class RollCallCoordinator(EffectHandlers):
    """Creates roll-calls, applies events to them, and makes their effects happen."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], conference: Conference,
                 evidence_gap: float = 3.0, on_finished: Callable[[int], Awaitable[Any]] | None = None,
                 clock: Clock | Callable[[], float] | None = None) -> None:
        self.store = RollCallStore(sessionmaker)
        #: Awaited with the roll-call id once it has finished (e.g. to issue notices).
        self.on_finished = on_finished
        self.conference = conference
        self.presence = Presence(conference)
        self.evidence_gap = evidence_gap
        #: Every instant recorded and every timer armed (tests move it on, see clock.ManualClock).
        self.clock: Clock = as_clock(clock)
        self._live: dict[int, LiveRollCall] = {}
        self._effects = self._effect_table()
        #: Told the board after every committed change (see :meth:`follow`).
        self.followers = BoardFollowers(self._read_board)
        # A console starting or stopping to publish in a roll-call's room changes its board's 在线.
        conference.on_published.append(self._presence_changed)
        conference.on_unpublished.append(lambda publication, _reason: self._presence_changed(publication))
        #: The pre-checks shown before a roll-call is created, told what changes (see :meth:`watch_readiness`).
        self.readiness_watchers = ReadinessWatchers(self.readiness)
        #: The 在线 each followed board last showed, and the task that looks for changes in it.
        self._shown_readiness: dict[int, dict[int, list[str]]] = {}
        self._readiness_asked: set[int] = set()  # followed ids pushed once to learn their 在线
        self._board_seq = itertools.count(time.time_ns() // 1000)  # µs: exact in a JS number
        self._readiness_ticker: asyncio.Task[None] | None = None
        conference.on_participant_joined.append(self._console_came_or_went)
        conference.on_participant_left.append(lambda participant, _reason: self._console_came_or_went(participant))

    # -- lifecycle ---------------------------------------------------------------------------

    async def recover(self) -> list[int]:
        """At start: a roll-call left running by a stopped server is closed as interrupted.

        Its attendance so far stays as recorded; the host may start it again to resume. An
        answer whose evidence was still being taken when the server stopped is marked
        ``lost``: a picture taken now would not show who was there when the room answered.
        """
        async with self.store.begin() as uow:
            ids = await uow.running()
            # Nothing is gathering evidence yet in this process, so every blank is a lost one.
            await uow.mark_evidence_lost()
        for roll_call_id in ids:
            await self.dispatch(roll_call_id, machine.Interrupt(at=self.clock()))
        return ids

    async def close(self) -> None:
        """Stop every timer and task (evidence, handovers) and wait for them to unwind."""
        tasks: list[asyncio.Task[Any]] = []
        for live in self._live.values():
            for timer in live.timers.values():
                timer.cancel()
            for task in list(live.tasks):
                task.cancel()
                tasks.append(task)
        self._live.clear()
        if self._readiness_ticker is not None:
            self._readiness_ticker.cancel()
            tasks.append(self._readiness_ticker)
        await self.followers.close()
        await self.readiness_watchers.close()
        # A task cancelled inside a commit still rolls back through the database: let it, before
        # the engine is disposed under it (it would wait forever on a connection that is gone).
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)

    # -- typed commands (the scheduler, and the HTTP edge once it has checked who) -------------

    async def open(self, command: CreateRollCall, owner: Owner) -> dict[str, Any]:
        """Create a roll-call of rooms in ``owner``'s scope; NotFound names those that are not."""
        async with self.store.begin() as uow:
            found = await uow.rooms_in_scope(command.room_ids, owner.unit_path)
            missing = [r for r in command.room_ids if r not in found]
            if missing:
                raise NotFound("rollcall.rooms_not_in_scope", field="room_ids", ids=", ".join(map(str, missing)))
            try:
                state = machine.new_roll_call(list(command.room_ids), command.answer_window, command.late_after)
            except IllegalEvent as exc:
                raise Invalid(exc.msg) from exc
            record = await uow.add(owner, command, state)
        self._live[record.id] = LiveRollCall(state)
        return {"id": record.id, "room": rollcall_room(record.id), "title": command.title, "kind": command.kind}

    async def execute(self, roll_call_id: int, command: HostCommand) -> machine.RollCall:
        """Carry out a host's command (no scope check: the caller decided who may)."""
        async with self.store.begin() as uow:
            state, _ = await self._dispatch(uow, roll_call_id, self._event_of(roll_call_id, command))
        self._after(roll_call_id, command)
        return state

    # -- the HTTP-shaped commands: who, the client's JSON ------------------------------------------

    async def create(self, who: Principal, data: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/rollcalls``."""
        self._require_host(who)
        return await self.open(parse_create(data), Owner.of(who))

    async def command(self, who: Principal, roll_call_id: int, action: str, data: dict[str, Any]) -> dict[str, Any]:
        """A host's command: start, call, skip, excuse, poll, stop_poll, finish, cancel; returns the board."""
        self._require_host(who)
        async with self.store.begin() as uow:
            record = await self._in_scope(uow, who, roll_call_id)
            command = parse_command(action, data)

            async def board(state: machine.RollCall) -> dict[str, Any]:
                return await self._board(uow, record, state)

            _, shown = await self._dispatch(uow, roll_call_id, self._event_of(roll_call_id, command), board)
        self._after(roll_call_id, command)
        assert shown is not None
        return shown

    async def answer(self, roll_call_id: int, duty_room_id: int, officer: Any) -> None:
        """A console answered "到" for the person ``officer`` (one of the rostered, or another named)."""
        name = parse_officer(officer)
        await self.dispatch(roll_call_id, machine.Answer(room_id=duty_room_id, at=self.clock(), officer=name))

    async def board(self, who: Principal, roll_call_id: int) -> dict[str, Any]:
        """The live attendance board."""
        async with self.store.begin() as uow:
            record = await self._in_scope(uow, who, roll_call_id)
            live = self._live.get(roll_call_id)
            return await self._board(uow, record, live.state if live else from_json(record.state))

    def follow(self, roll_call_id: int, observer: BoardObserver) -> Callable[[], None]:
        """Call ``observer`` with the board after each committed command and presence change;
        returns the function that stops it. No scope check: the caller decided who may (the
        board it read with :meth:`board` first, after following, is the starting point).
        While anybody follows, the boards' 在线 is looked at every second, so a camera that
        stops delivering shows there as it does on the pre-check."""
        unfollow = self.followers.follow(roll_call_id, observer)
        if self._readiness_ticker is None or self._readiness_ticker.done():
            self._readiness_ticker = asyncio.ensure_future(self._tick_board_readiness())
        return unfollow

    async def _tick_board_readiness(self) -> None:
        while self.followers.followed_ids():
            await asyncio.sleep(BOARD_READINESS_INTERVAL)
            followed = set(self.followers.followed_ids())
            for roll_call_id in list(self._shown_readiness):
                if roll_call_id not in followed:
                    del self._shown_readiness[roll_call_id]
            self._readiness_asked &= followed
            for roll_call_id in followed - self._readiness_asked - set(self._shown_readiness):
                # Followed, never pushed yet (the follower's board came from a read): push once,
                # and the push records what its 在线 shows.
                self._readiness_asked.add(roll_call_id)
                self.followers.changed(roll_call_id)
            for roll_call_id, shown in list(self._shown_readiness.items()):
                if self.readiness(list(shown)) != shown:
                    self.followers.changed(roll_call_id)

    async def precheck(self, who: Principal, roll_call_id: int) -> list[dict[str, Any]]:
        """Which target rooms are ready: connected, camera and microphone delivering."""
        async with self.store.begin() as uow:
            record = await self._in_scope(uow, who, roll_call_id)
            return await self._describe_readiness(uow, room_ids_of(record))

    async def precheck_rooms(self, who: Principal, room_ids: object) -> list[dict[str, Any]]:
        """Before a roll-call is created: readiness of the rooms picked (all in ``who``'s scope)."""
        self._require_host(who)
        if (not isinstance(room_ids, list) or len(room_ids) > 5000
                or not all(isinstance(r, int) and not isinstance(r, bool) and 0 < r < 2**63 for r in room_ids)):
            raise Invalid("rollcall.room_ids", field="room_ids")
        ids = list(dict.fromkeys(room_ids))
        async with self.store.begin() as uow:
            found = await uow.rooms_in_scope(tuple(ids), who.unit_path)
            missing = [r for r in ids if r not in found]
            if missing:
                raise NotFound("rollcall.rooms_not_in_scope", field="room_ids", ids=", ".join(map(str, missing[:20])))
            return await self._describe_readiness(uow, ids)

    async def watch_readiness(self, who: Principal, room_ids: object,
                              observer: ReadinessObserver) -> tuple[list[dict[str, Any]], Callable[[], None]]:
        """The pre-check of the rooms picked (as :meth:`precheck_rooms`, which checks who may),
        and from then on ``observer`` told each room whose readiness changes ({room: problems});
        returns the report and the function that stops it."""
        report = await self.precheck_rooms(who, room_ids)
        # No await from here on: the report says the readiness the watch starts from.
        now, unwatch = self.readiness_watchers.watch([r["duty_room_id"] for r in report], observer)
        for row in report:
            problems = now.get(row["duty_room_id"], row["problems"])
            row.update(ready=not problems, problems=problems)
        return report, unwatch

    async def describe_readiness(self, room_ids: list[int]) -> list[dict[str, Any]]:
        """Readiness of ``room_ids`` with their names (a plan's pre-check)."""
        async with self.store.begin() as uow:
            return await self._describe_readiness(uow, room_ids)

    async def may_join(self, who: Principal, roll_call_id: int) -> bool:
        """A roll-call's room is open to its target consoles and to accounts whose scope covers it."""
        async with self.store.begin() as uow:
            record = await uow.roll_call(roll_call_id)
        if record is None:
            return False
        if who.kind == "device":
            return who.duty_room_id in room_ids_of(record)
        return who.covers(record.unit_path)

    # -- presence ----------------------------------------------------------------------------

    def readiness(self, room_ids: list[int], fresh: float = 3.0) -> dict[int, list[str]]:
        """For each duty room, what stops it taking part now ([] when ready)."""
        return self.presence.readiness(room_ids, fresh)

    def is_connected(self, roll_call_id: int, duty_room_id: int) -> bool:
        """A console of the room is in the roll-call's conference room and publishing."""
        return self.presence.is_connected(roll_call_id, duty_room_id)

    def invite(self, roll_call_id: int) -> int:
        """Ask every target console, wherever it is connected, to join the roll-call's room."""
        live = self._live.get(roll_call_id)
        if live is None:
            return 0
        return self.presence.invite(roll_call_id, {call.room_id for call in live.state.rooms})

    # -- the engine ----------------------------------------------------------------------------

    async def dispatch(self, roll_call_id: int, event: EventOf) -> machine.RollCall:
        """Apply one event in a unit of work of its own: commit the result, then carry out its effects.

        ``event`` may be a function of the current state, called under the lock, for events
        that depend on it (a call of the next room, and whether that room is connected).
        """
        async with self.store.begin() as uow:
            state, _ = await self._dispatch(uow, roll_call_id, event)
        return state

    async def _dispatch(self, uow: UnitOfWork, roll_call_id: int, event: EventOf,
                        read: Callable[[machine.RollCall], Awaitable[T]] | None = None,
                        ) -> tuple[machine.RollCall, T | None]:
        """Apply ``event`` under the roll-call's lock, write it in ``uow``, call ``read`` on the new
        state (still in ``uow``), commit, then carry out the effects."""
        live = await self._load(uow, roll_call_id)
        async with live.lock:
            step = machine.apply(live.state, event(live.state) if callable(event) else event)  # IllegalEvent: no change
            rostered = await uow.save(roll_call_id, step, self.clock())
            shown = await read(step.state) if read is not None else None
            await uow.commit()  # before any effect: a crash after it loses nothing the consoles saw
            live.state = step.state
            if isinstance(shown, dict) and "seq" in shown:
                # Numbered again now that it is the live state: a push that read the old state
                # during the commit got a higher seq than the board taken before it.
                shown["seq"] = next(self._board_seq)
            for effect in step.effects:
                self._effects[type(effect)](roll_call_id, live, effect, rostered)
        self.followers.changed(roll_call_id)
        return step.state, shown

    def _event_of(self, roll_call_id: int, command: HostCommand) -> EventOf:
        now = self.clock()
        if isinstance(command, Call):
            # Which room, and whether it is connected, are decided under the roll-call's lock
            # with the state the call applies to: a skip or poll step in between changes both.
            return self._call_event(roll_call_id, command.room_id, now)
        return command.event(now)

    def _after(self, roll_call_id: int, command: HostCommand) -> None:
        if isinstance(command, Start):
            self.invite(roll_call_id)

    # -- reads ---------------------------------------------------------------------------------

    async def _load(self, uow: UnitOfWork, roll_call_id: int) -> LiveRollCall:
        live = self._live.get(roll_call_id)
        if live is None:
            record = await uow.roll_call(roll_call_id)
            if record is None:
                raise NotFound("rollcall.not_found", id=roll_call_id)
            live = self._live.setdefault(roll_call_id, LiveRollCall(from_json(record.state)))
        return live

    async def _read_board(self, roll_call_id: int) -> dict[str, Any] | None:
        """The board as it is now, for its followers (they were checked when they followed)."""
        async with self.store.begin() as uow:
            record = await uow.roll_call(roll_call_id)
            if record is None:
                return None
            live = self._live.get(roll_call_id)
            return await self._board(uow, record, live.state if live else from_json(record.state), pushed=True)

    def _console_came_or_went(self, participant: Participant) -> None:
        duty_room_id = duty_room_of(participant.tag)
        if duty_room_id is not None:
            self.readiness_watchers.changed(duty_room_id)

    def _presence_changed(self, publication: Publication) -> None:
        duty_room_id = duty_room_of(publication.participant.tag)
        if duty_room_id is None:
            return
        self.readiness_watchers.changed(duty_room_id)
        managed = parse_room(publication.participant.room_name)
        if managed is not None and managed.kind is RoomKind.ROLLCALL:
            self.followers.changed(managed.id)
        # Wherever it is (standby too): the pre-check shown on every followed board that calls it.
        for roll_call_id in self.followers.followed_ids():
            live = self._live.get(roll_call_id)
            if live is not None and any(call.room_id == duty_room_id for call in live.state.rooms):
                self.followers.changed(roll_call_id)

    async def _board(self, uow: UnitOfWork, record: RollCallRecord, state: machine.RollCall,
                     pushed: bool = False) -> dict[str, Any]:
        """The board; ``pushed``: the one its followers are sent (whose 在线 the ticker compares)."""
        # Taken with ``state``, before any await: a page shows the board of the highest seq it got
        # (a command's reply can arrive after a newer push). Started at the boot's clock, so a
        # restarted server's boards still count up (microseconds).
        seq = next(self._board_seq)
        rows = await uow.attendance(record.id)
        names = await uow.room_names(room_ids_of(record))
        # The pre-check's own answer (what stops each room taking part now): the board's 在线.
        readiness = self.readiness([call.room_id for call in state.rooms])
        if pushed and self.followers.followed(record.id):
            self._shown_readiness[record.id] = readiness
        rooms = []
        for call in state.rooms:
            row = rows.get(call.room_id)
            rooms.append({"duty_room_id": call.room_id, "name": names.get(call.room_id, ""), "status": call.status,
                          "attempts": call.attempts, "connected": self.is_connected(record.id, call.room_id),
                          "problems": readiness.get(call.room_id, []),
                          "officer": row.officer if row else None, "on_roster": row.on_roster if row else None,
                          "reason": row.reason if row else None, "evidence": row.evidence if row else None,
                          "evidence_sha256": row.evidence_sha256 if row else None,
                          # When the room was last called (the clock's seconds since the epoch).
                          "called_at": call.called_at})
        # The answer window and the clock's "now", so a page counts the call down on its own clock.
        return {"id": record.id, "title": record.title, "kind": record.kind, "phase": state.phase,
                "current": state.current, "polling": state.polling, "room": rollcall_room(record.id),
                "answer_window": state.answer_window, "late_after": state.late_after, "now": self.clock(),
                "seq": seq, "rooms": rooms}

    async def _describe_readiness(self, uow: UnitOfWork, room_ids: list[int]) -> list[dict[str, Any]]:
        readiness = self.readiness(room_ids)
        names = await uow.room_names(room_ids)
        return [{"duty_room_id": r, "name": names.get(r, ""), "ready": not readiness[r], "problems": readiness[r]}
                for r in room_ids]

    async def _in_scope(self, uow: UnitOfWork, who: Principal, roll_call_id: int) -> RollCallRecord:
        record = await uow.roll_call(roll_call_id)
        if who.kind == "device":
            # A console answers on its own screen; the board and pre-check show other rooms'
            # people and evidence, which a shared, unattended duty-room PC must not read.
            raise Forbidden("rollcall.console_no_board")
        if record is None or not who.covers(record.unit_path):
            raise NotFound("rollcall.not_found", id=roll_call_id)
        return record

    @staticmethod
    def _require_host(who: Principal) -> None:
        if not who.may("rollcall.host"):
            raise Forbidden("rollcall.hosts_only")
