"""The roll-call state machine: pure, no I/O, no clock, every transition in one table.

A :class:`RollCall` is an immutable value. :func:`apply` takes it and an event and
returns the next value and the effects the coordinator must carry out (ring a room,
give it the floor, start the answer timer, record attendance). An event that is not
allowed in the current state raises :class:`IllegalEvent`; since nothing is mutated,
a rejected event changes nothing.

Phases: ``scheduled`` → ``running`` → ``finished``; ``scheduled``/``running`` →
``cancelled`` or ``interrupted`` (the server stopped mid roll-call and it was not resumed).
Inside ``running`` at most one room is being called at a time.

Outcomes of a room: ``on_time``, ``late`` (answered after the late threshold, within
the window), ``absent`` (the window passed), ``offline`` (its console was not connected
when called), ``excused`` (the host excused it, with a reason), ``not_called`` (the
roll-call finished before its turn).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TypeVar

from ..messages import Msg
from .errors import IllegalEvent as IllegalEvent  # raised here; re-exported for callers

# -- values ---------------------------------------------------------------------------------

PENDING = "pending"
CALLING = "calling"


class Outcome(StrEnum):
    """How a room's call ended; the values are what the database and the wire hold."""

    ON_TIME = "on_time"
    LATE = "late"
    ABSENT = "absent"
    OFFLINE = "offline"
    EXCUSED = "excused"
    NOT_CALLED = "not_called"


ON_TIME = Outcome.ON_TIME
LATE = Outcome.LATE
ABSENT = Outcome.ABSENT
OFFLINE = Outcome.OFFLINE
EXCUSED = Outcome.EXCUSED
NOT_CALLED = Outcome.NOT_CALLED
OUTCOMES = tuple(Outcome)


@dataclass(frozen=True)
class RoomCall:
    """One duty room's part in a roll-call."""

    room_id: int
    status: str = PENDING
    called_at: float | None = None
    answered_at: float | None = None
    answered_by: str | None = None
    reason: str | None = None
    attempts: int = 0


@dataclass(frozen=True)
class RollCall:
    """The whole state of one roll-call occurrence."""

    rooms: tuple[RoomCall, ...]
    answer_window: float = 60.0
    late_after: float = 30.0
    phase: str = "scheduled"
    current: int | None = None
    polling: bool = False
    dwell: float = 10.0
    started_at: float | None = None
    ended_at: float | None = None

    def room(self, room_id: int) -> RoomCall:
        for call in self.rooms:
            if call.room_id == room_id:
                return call
        raise IllegalEvent("machine.room_not_in_roll_call", room=room_id)

    def next_pending(self) -> int | None:
        for call in self.rooms:
            if call.status == PENDING:
                return call.room_id
        return None

    def _with_room(self, updated: RoomCall) -> RollCall:
        return replace(self, rooms=tuple(updated if c.room_id == updated.room_id else c for c in self.rooms))


# -- events -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Start:
    at: float


@dataclass(frozen=True)
class Call:
    """Call a room: ``room_id`` None means the next pending room in order."""

    at: float
    room_id: int | None = None
    connected: bool = True


@dataclass(frozen=True)
class Answer:
    room_id: int
    at: float
    officer: str = ""


@dataclass(frozen=True)
class WindowExpired:
    room_id: int
    at: float


@dataclass(frozen=True)
class Skip:
    """Stop calling the current room without an outcome; it goes back to the queue's end."""

    at: float


@dataclass(frozen=True)
class Excuse:
    room_id: int
    reason: str
    at: float


@dataclass(frozen=True)
class StartPolling:
    dwell: float
    at: float


@dataclass(frozen=True)
class StopPolling:
    at: float


@dataclass(frozen=True)
class Finish:
    at: float


@dataclass(frozen=True)
class Cancel:
    at: float


@dataclass(frozen=True)
class Interrupt:
    at: float


Event = Start | Call | Answer | WindowExpired | Skip | Excuse | StartPolling | StopPolling | Finish | Cancel | Interrupt

# -- effects ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ring:
    room_id: int


@dataclass(frozen=True)
class StopRinging:
    room_id: int


@dataclass(frozen=True)
class GiveFloor:
    """The called room's video and audio go to everyone (None: nobody has the floor)."""

    room_id: int | None


@dataclass(frozen=True)
class StartAnswerTimer:
    room_id: int
    deadline: float


@dataclass(frozen=True)
class CancelAnswerTimer:
    room_id: int


@dataclass(frozen=True)
class Record:
    """Commit this room's attendance now (every change is committed as it happens)."""

    room_id: int
    outcome: str
    at: float
    officer: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class TakeEvidence:
    """Snapshot the answering room's own stream for the attendance record."""

    room_id: int


@dataclass(frozen=True)
class ScheduleNextCall:
    at: float


@dataclass(frozen=True)
class Ended:
    phase: str


Effect = (Ring | StopRinging | GiveFloor | StartAnswerTimer | CancelAnswerTimer | Record | TakeEvidence
          | ScheduleNextCall | Ended)


@dataclass(frozen=True)
class Step:
    state: RollCall
    effects: tuple[Effect, ...] = field(default_factory=tuple)


# -- transitions --------------------------------------------------------------------------------


def _start(s: RollCall, e: Start) -> Step:
    return Step(replace(s, phase="running", started_at=s.started_at if s.started_at is not None else e.at))


def _end_current(s: RollCall) -> tuple[RollCall, list[Effect]]:
    """Stop calling the current room (it must have an outcome or be re-queued by the caller)."""
    if s.current is None:
        return s, []
    room = s.current
    return replace(s, current=None), [StopRinging(room), CancelAnswerTimer(room)]


def _call(s: RollCall, e: Call) -> Step:
    if s.current is not None:
        raise IllegalEvent("machine.still_calling", room=s.current)
    room_id = e.room_id if e.room_id is not None else s.next_pending()
    if room_id is None:
        raise IllegalEvent("machine.all_called")
    call = s.room(room_id)
    if call.status == CALLING:
        raise IllegalEvent("machine.already_calling", room=room_id)
    # Calling a room that already has an outcome is a re-call: the new answer replaces it.
    call = replace(call, status=CALLING, called_at=e.at, answered_at=None, answered_by=None, reason=None,
                   attempts=call.attempts + 1)
    if not e.connected:
        call = replace(call, status=OFFLINE)
        return Step(s._with_room(call), (Record(room_id, OFFLINE, e.at),) + _poll_next(s, e.at))
    state = replace(s._with_room(call), current=room_id)
    return Step(state, (GiveFloor(room_id), Ring(room_id), StartAnswerTimer(room_id, e.at + s.answer_window)))


def _poll_next(s: RollCall, at: float) -> tuple[Effect, ...]:
    return (ScheduleNextCall(at + s.dwell),) if s.polling else ()


def _answer(s: RollCall, e: Answer) -> Step:
    call = s.room(e.room_id)
    if s.current != e.room_id or call.status != CALLING:
        raise IllegalEvent("machine.not_calling", room=e.room_id)
    assert call.called_at is not None
    outcome = ON_TIME if e.at - call.called_at <= s.late_after else LATE
    call = replace(call, status=outcome, answered_at=e.at, answered_by=e.officer or None)
    state, effects = _end_current(s._with_room(call))
    effects += [Record(e.room_id, outcome, e.at, officer=e.officer or None), TakeEvidence(e.room_id)]
    return Step(state, tuple(effects) + _poll_next(s, e.at))


def _expire(s: RollCall, e: WindowExpired) -> Step:
    call = s.room(e.room_id)
    if s.current != e.room_id or call.status != CALLING:
        raise IllegalEvent("machine.not_calling", room=e.room_id)  # a stale timer
    state, effects = _end_current(s._with_room(replace(call, status=ABSENT)))
    return Step(state, tuple(effects) + (Record(e.room_id, ABSENT, e.at), GiveFloor(None)) + _poll_next(s, e.at))


def _skip(s: RollCall, e: Skip) -> Step:
    if s.current is None:
        raise IllegalEvent("machine.nobody_calling")
    call = s.room(s.current)
    # Back to the end of the queue, as if never called.
    requeued = replace(call, status=PENDING, called_at=None)
    rooms = tuple(c for c in s.rooms if c.room_id != call.room_id) + (requeued,)
    state, effects = _end_current(replace(s, rooms=rooms))
    return Step(state, tuple(effects) + (GiveFloor(None),) + _poll_next(s, e.at))


def _excuse(s: RollCall, e: Excuse) -> Step:
    if not e.reason.strip():
        raise IllegalEvent("machine.excuse_reason")
    call = replace(s.room(e.room_id), status=EXCUSED, reason=e.reason.strip())
    state = s._with_room(call)
    effects: list[Effect] = []
    if s.current == e.room_id:
        state, effects = _end_current(state)
        effects.append(GiveFloor(None))
    effects.append(Record(e.room_id, EXCUSED, e.at, reason=call.reason))
    return Step(state, tuple(effects))


def _start_polling(s: RollCall, e: StartPolling) -> Step:
    if e.dwell <= 0:
        raise IllegalEvent("machine.dwell_positive")
    if s.polling:
        raise IllegalEvent("machine.already_polling")
    state = replace(s, polling=True, dwell=e.dwell)
    return Step(state, () if s.current is not None else (ScheduleNextCall(e.at),))


def _stop_polling(s: RollCall, e: StopPolling) -> Step:
    if not s.polling:
        raise IllegalEvent("machine.not_polling")
    return Step(replace(s, polling=False))


def _finish(s: RollCall, e: Finish) -> Step:
    if s.current is not None:
        raise IllegalEvent("machine.still_calling_short", room=s.current)
    effects: list[Effect] = []
    rooms = []
    for call in s.rooms:
        if call.status == PENDING:
            call = replace(call, status=NOT_CALLED)
            effects.append(Record(call.room_id, NOT_CALLED, e.at))
        rooms.append(call)
    state = replace(s, rooms=tuple(rooms), phase="finished", polling=False, ended_at=e.at)
    return Step(state, tuple(effects) + (GiveFloor(None), Ended("finished")))


def _stop(phase: str) -> Callable[[RollCall, Event], Step]:
    def stop(s: RollCall, e: Event) -> Step:
        state, effects = _end_current(s)
        state = replace(state, phase=phase, polling=False, ended_at=e.at)
        if s.current is not None:
            # The called room keeps "calling" in the record: it neither answered nor missed.
            state = state._with_room(replace(s.room(s.current), status=PENDING, called_at=None))
        return Step(state, tuple(effects) + (GiveFloor(None), Ended(phase)))

    return stop


Handler = Callable[[RollCall, Event], Step]
E = TypeVar("E", Start, Call, Answer, WindowExpired, Skip, Excuse, StartPolling, StopPolling, Finish, Cancel,
            Interrupt)


def _on(phase: str, event_type: type[E], handler: Callable[[RollCall, E], Step]) -> tuple[tuple[str, type], Handler]:
    """One row of the table, type-checked: ``handler`` takes exactly ``event_type``."""
    def run(state: RollCall, event: Event) -> Step:
        assert isinstance(event, event_type)
        return handler(state, event)

    return (phase, event_type), run


#: Every transition: (phase, event type) → handler. Anything else is illegal.
TRANSITIONS: dict[tuple[str, type], Handler] = dict([
    _on("scheduled", Start, _start),
    _on("scheduled", Cancel, _stop("cancelled")),
    _on("scheduled", Interrupt, _stop("interrupted")),
    _on("running", Call, _call),
    _on("running", Answer, _answer),
    _on("running", WindowExpired, _expire),
    _on("running", Skip, _skip),
    _on("running", Excuse, _excuse),
    _on("running", StartPolling, _start_polling),
    _on("running", StopPolling, _stop_polling),
    _on("running", Finish, _finish),
    _on("running", Cancel, _stop("cancelled")),
    _on("running", Interrupt, _stop("interrupted")),
    _on("finished", Excuse, _excuse),  # a late excuse corrects the record
    _on("interrupted", Start, _start),  # resumed after a restart
])


def new_roll_call(room_ids: list[int], answer_window: float = 60.0, late_after: float = 30.0) -> RollCall:
    if not room_ids:
        raise IllegalEvent("machine.no_rooms")
    if len(set(room_ids)) != len(room_ids):
        raise IllegalEvent("machine.room_twice")
    if not 0 < late_after <= answer_window:
        raise IllegalEvent("machine.late_threshold")
    return RollCall(rooms=tuple(RoomCall(r) for r in room_ids), answer_window=answer_window, late_after=late_after)


def apply(state: RollCall, event: Event) -> Step:
    """The next state and its effects; raises IllegalEvent (and changes nothing) otherwise."""
    handler = TRANSITIONS.get((state.phase, type(event)))
    if handler is None:
        # Said in the reader's language: "本次点名已结束，不能点名", never "finished"/"Call".
        raise IllegalEvent("machine.wrong_phase", event=Msg(f"machine.event.{type(event).__name__}"),
                           phase=Msg(f"machine.phase.{state.phase}"))
    return handler(state, event)
