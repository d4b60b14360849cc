"""Carrying out the machine's effects: one handler per effect type, and the background work
they start (answer timers, polling steps, evidence, the floor handover).

Mixed into :class:`~.coordinator.RollCallCoordinator`, which owns the state these read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..conference import Publication
from ..media import evidence
from . import machine
from .clock import Clock, Timer
from .machine import IllegalEvent
from .observers import BoardFollowers
from .presence import Presence
from .store import RollCallStore

logger = logging.getLogger(__name__)

#: The longest the room that had the floor keeps publishing full quality while the floor
#: moves on and the new room's first keyframe is awaited.
FLOOR_HANDOVER = 2.0

EventOf = machine.Event | Callable[[machine.RollCall], machine.Event]
Rostered = dict[int, list[dict[str, str]]]


@dataclass
class LiveRollCall:
    """A roll-call in memory: the machine's value, its lock (one event at a time), timers and tasks."""

    state: machine.RollCall
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    timers: dict[str, Timer] = field(default_factory=dict)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    #: The room told to publish full quality (the others publish the small profile).
    full_room: int | None = None


class EffectHandlers:
    """The handlers of ``self._effects``, keyed by effect type, and the work they spawn."""

    # Owned by the coordinator.
    store: RollCallStore
    presence: Presence
    clock: Clock
    evidence_gap: float
    on_finished: Callable[[int], Awaitable[Any]] | None
    followers: BoardFollowers
    _live: dict[int, LiveRollCall]

    async def dispatch(self, roll_call_id: int, event: EventOf) -> machine.RollCall:
        raise NotImplementedError

    def _effect_table(self) -> dict[type, Callable[[int, LiveRollCall, Any, Rostered], None]]:
        # One handler per effect type: a new effect without one fails loudly at its first use.
        return {
            machine.StartAnswerTimer: self._start_answer_timer,
            machine.CancelAnswerTimer: self._cancel_answer_timer,
            machine.Ring: self._ring,
            machine.StopRinging: self._stop_ringing,
            machine.GiveFloor: self._give_floor,
            machine.Record: self._announce_record,
            machine.TakeEvidence: self._take_evidence,
            machine.ScheduleNextCall: self._schedule_next_call,
            machine.Ended: self._ended,
        }

    def _call_event(self, roll_call_id: int, room_id: int | None,
                    at: float) -> Callable[[machine.RollCall], machine.Event]:
        """A call of ``room_id`` (None: the next pending room), made from the state it applies to."""
        def make(state: machine.RollCall) -> machine.Event:
            target = room_id if room_id is not None else state.next_pending()
            return machine.Call(at=at, room_id=target,
                                connected=target is not None and self.presence.is_connected(roll_call_id, target))

        return make

    def _start_answer_timer(self, roll_call_id: int, live: LiveRollCall, e: machine.StartAnswerTimer,
                            _: Rostered) -> None:
        room_id, deadline = e.room_id, e.deadline
        live.timers[f"answer-{room_id}"] = self.clock.call_at(
            deadline, lambda: self._spawn(live, self._expire(roll_call_id, room_id, deadline)))

    def _cancel_answer_timer(self, roll_call_id: int, live: LiveRollCall, e: machine.CancelAnswerTimer,
                             _: Rostered) -> None:
        timer = live.timers.pop(f"answer-{e.room_id}", None)
        if timer is not None:
            timer.cancel()

    def _ring(self, roll_call_id: int, live: LiveRollCall, e: machine.Ring, rostered: Rostered) -> None:
        # Who is rostered goes to the rung console only: it offers them as one-click answers.
        self.presence.notify(roll_call_id, e.room_id, {
            "type": "rollcall_ring", "roll_call_id": roll_call_id, "duty_room_id": e.room_id,
            "answer_window": live.state.answer_window, "rostered": rostered.get(e.room_id, [])})

    def _stop_ringing(self, roll_call_id: int, live: LiveRollCall, e: machine.StopRinging, _: Rostered) -> None:
        self.presence.notify(roll_call_id, e.room_id, {
            "type": "rollcall_ring_stop", "roll_call_id": roll_call_id, "duty_room_id": e.room_id})

    def _give_floor(self, roll_call_id: int, live: LiveRollCall, e: machine.GiveFloor, _: Rostered) -> None:
        self.presence.broadcast(roll_call_id, {"type": "rollcall_floor", "roll_call_id": roll_call_id,
                                               "duty_room_id": e.room_id})
        # Every console's floor subscription switches to the called room's own stream.
        publication = self.presence.give_floor(roll_call_id, e.room_id)
        # Only the room with the floor publishes full quality; the rest stay small. The room
        # that had it keeps full quality until the new room's keyframe is here, since
        # everyone still sees it until then.
        previous, live.full_room = live.full_room, e.room_id
        if e.room_id is not None:
            self.presence.notify(roll_call_id, e.room_id, {"type": "publish_quality", "profile": "full"})
        if previous is not None and previous != e.room_id:
            self._spawn(live, self._demote(roll_call_id, live, previous, publication))

    def _announce_record(self, roll_call_id: int, live: LiveRollCall, e: machine.Record, _: Rostered) -> None:
        # Written by the store in the step's own unit of work; here everyone is told.
        self.presence.broadcast(roll_call_id, {"type": "rollcall_attendance", "roll_call_id": roll_call_id,
                                               "duty_room_id": e.room_id, "outcome": e.outcome})

    def _take_evidence(self, roll_call_id: int, live: LiveRollCall, e: machine.TakeEvidence, _: Rostered) -> None:
        # Keyed by attempt: a re-call answered while this is still recording gets its own.
        attempt = live.state.room(e.room_id).attempts
        self._spawn(live, self._evidence(roll_call_id, e.room_id, attempt))

    def _schedule_next_call(self, roll_call_id: int, live: LiveRollCall, e: machine.ScheduleNextCall,
                            _: Rostered) -> None:
        timer = live.timers.pop("next", None)
        if timer is not None:
            timer.cancel()
        live.timers["next"] = self.clock.call_at(e.at, lambda: self._spawn(live, self._poll_next(roll_call_id)))

    def _ended(self, roll_call_id: int, live: LiveRollCall, e: machine.Ended, _: Rostered) -> None:
        for timer in live.timers.values():
            timer.cancel()
        live.timers.clear()
        self.presence.broadcast(roll_call_id, {"type": "rollcall_ended", "roll_call_id": roll_call_id,
                                               "phase": e.phase})
        if e.phase == "finished" and self.on_finished is not None:
            self._spawn(live, self.on_finished(roll_call_id))
        else:
            asyncio.get_running_loop().call_soon(self._forget_if_done, live)

    # -- background work -----------------------------------------------------------------------

    async def _demote(self, roll_call_id: int, live: LiveRollCall, room_id: int, handover: Publication | None) -> None:
        """Tell ``room_id`` to publish small again, once ``handover`` (the new floor's publication,
        if any) has delivered a keyframe, or after FLOOR_HANDOVER seconds."""
        if handover is not None:
            await handover.next_keyframe(FLOOR_HANDOVER)
        if live.full_room != room_id:  # unless it was given the floor back meanwhile
            self.presence.notify(roll_call_id, room_id, {"type": "publish_quality", "profile": "idle"})

    def _spawn(self, live: LiveRollCall, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        live.tasks.add(task)
        task.add_done_callback(live.tasks.discard)
        task.add_done_callback(lambda _: self._forget_if_done(live))

    def _forget_if_done(self, live: LiveRollCall) -> None:
        """An ended roll-call leaves memory once its last task (evidence, notices) is done; a
        resumed one is loaded again from its record (it was committed before any effect)."""
        if live.state.phase != "running" and not live.tasks and not live.timers:
            for roll_call_id, held in list(self._live.items()):
                if held is live:
                    del self._live[roll_call_id]

    async def _expire(self, roll_call_id: int, room_id: int, deadline: float) -> None:
        try:
            await self.dispatch(roll_call_id, machine.WindowExpired(room_id=room_id, at=deadline))
        except IllegalEvent:
            pass  # answered (or skipped, excused) meanwhile: a stale timer

    async def _poll_next(self, roll_call_id: int) -> None:
        call = self._call_event(roll_call_id, None, self.clock())

        def step(state: machine.RollCall) -> machine.Event:
            # Decided under the lock, on the state the step applies to (see _call_event).
            if state.phase != "running" or not state.polling or state.current is not None:
                raise IllegalEvent("machine.polling_stopped")
            return machine.Finish(at=self.clock()) if state.next_pending() is None else call(state)

        try:
            await self.dispatch(roll_call_id, step)
        except IllegalEvent as exc:
            logger.info("roll-call %s: polling step refused: %s", roll_call_id, exc)

    async def _evidence(self, roll_call_id: int, room_id: int, attempt: int) -> None:
        """Snapshot the answering room's own stream and keep the verdict with that attempt's answer."""
        publication = self.presence.publication(roll_call_id, room_id)
        video = publication.forwarder("video") if publication is not None else None
        codec = publication.codec_name("video") if publication is not None else None
        if video is None or codec is None:
            result = evidence.Evidence(evidence.NO_VIDEO)
        else:
            result = await evidence.gather(video, codec, gap=self.evidence_gap)
        async with self.store.begin() as uow:
            kept = await uow.keep_evidence(roll_call_id, room_id, attempt, result)
        if not kept:
            # Re-called meanwhile: this picture is of an answer the row no longer holds.
            logger.info("roll-call %s: evidence of room %s attempt %s dropped", roll_call_id, room_id, attempt)
            return
        self.followers.changed(roll_call_id)
        self.presence.broadcast(roll_call_id, {"type": "rollcall_evidence", "roll_call_id": roll_call_id,
                                               "duty_room_id": room_id, "attempt": attempt,
                                               "evidence": result.verdict})
