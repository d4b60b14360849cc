"""Roll-call commands as typed values, and the one place they are parsed from JSON.

The HTTP edge and the signalling extension hand over the client's JSON; everything past
:func:`parse_create`, :func:`parse_command` and :func:`parse_officer` works with these
dataclasses. The scheduler builds them directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..directory.principal import Principal
from ..text import unsafe_reason
from . import machine
from .errors import Invalid, NotFound

OFFICER_MAX = 64
TITLE_MAX = 128
REASON_MAX = 256


@dataclass(frozen=True)
class Owner:
    """On whose behalf a roll-call is created: its host account and the unit path of its scope."""

    account_id: int | None
    unit_path: str

    @classmethod
    def of(cls, who: Principal) -> Owner:
        return cls(who.id, who.unit_path)


@dataclass(frozen=True)
class CreateRollCall:
    """A new roll-call of ``room_ids`` (checked against the owner's scope when created)."""

    room_ids: tuple[int, ...]
    title: str = "视频点名"
    answer_window: float = 60.0
    late_after: float = 30.0
    kind: str = "adhoc"


@dataclass(frozen=True)
class Start:
    """Start, or resume an interrupted roll-call; target consoles are invited."""

    def event(self, at: float) -> machine.Event:
        return machine.Start(at=at)


@dataclass(frozen=True)
class Call:
    """Call ``room_id``, or the next pending room (None); the coordinator adds connectedness."""

    room_id: int | None = None


@dataclass(frozen=True)
class Skip:
    """Stop calling the current room; it goes back to the end of the queue."""

    def event(self, at: float) -> machine.Event:
        return machine.Skip(at=at)


@dataclass(frozen=True)
class Excuse:
    """Excuse a room, with a reason."""

    room_id: int
    reason: str

    def event(self, at: float) -> machine.Event:
        return machine.Excuse(room_id=self.room_id, reason=self.reason, at=at)


@dataclass(frozen=True)
class Poll:
    """Call every pending room in turn, ``dwell`` seconds apart."""

    dwell: float = 10.0

    def event(self, at: float) -> machine.Event:
        return machine.StartPolling(dwell=self.dwell, at=at)


@dataclass(frozen=True)
class StopPoll:
    """Stop polling."""

    def event(self, at: float) -> machine.Event:
        return machine.StopPolling(at=at)


@dataclass(frozen=True)
class Finish:
    """Finish: rooms not called yet are recorded as not called."""

    def event(self, at: float) -> machine.Event:
        return machine.Finish(at=at)


@dataclass(frozen=True)
class Cancel:
    """Cancel the roll-call."""

    def event(self, at: float) -> machine.Event:
        return machine.Cancel(at=at)


HostCommand = Start | Call | Skip | Excuse | Poll | StopPoll | Finish | Cancel


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: An answer window, late threshold or polling dwell longer than ten minutes is a mistake
#: (and an infinite one would reach every console as JSON's unparseable Infinity).
MAX_WINDOW = 600
MIN_DWELL = 0.2


def parse_create(data: dict[str, Any]) -> CreateRollCall:
    """``POST /api/rollcalls``'s body as a command; raises Invalid with the field at fault."""
    title = data.get("title") or "视频点名"
    room_ids = data.get("room_ids")
    if not isinstance(title, str) or len(title) > TITLE_MAX or unsafe_reason(title):
        raise Invalid("rollcall.title", field="title", max=TITLE_MAX)
    if not isinstance(room_ids, list) or not room_ids or not all(_is_int(r) for r in room_ids):
        raise Invalid("rollcall.room_ids", field="room_ids")
    window = data.get("answer_window", 60)
    late = data.get("late_after", min(30, window) if isinstance(window, (int, float)) else 30)
    if not all(_is_number(v) and 0 < v <= MAX_WINDOW for v in (window, late)):
        raise Invalid("rollcall.window", field="answer_window", max=MAX_WINDOW)
    kind = data.get("kind") if data.get("kind") in ("spot_check", "plan") else "adhoc"
    if kind == "spot_check" and len(room_ids) != 1:
        raise Invalid("rollcall.spot_check_one_room", field="room_ids")
    return CreateRollCall(tuple(room_ids), title, float(window), float(late), str(kind))


def _call(data: dict[str, Any]) -> HostCommand:
    room_id = data.get("room_id")
    if room_id is not None and not _is_int(room_id):
        raise Invalid("rollcall.room_id", field="room_id")
    return Call(room_id)


def _excuse(data: dict[str, Any]) -> HostCommand:
    reason, room_id = data.get("reason"), data.get("room_id")
    if not isinstance(reason, str) or not isinstance(room_id, int):
        raise Invalid("rollcall.excuse_fields")
    if unsafe_reason(reason, multiline=True):
        raise Invalid("rollcall.excuse_control", field="reason")
    return Excuse(room_id, reason[:REASON_MAX])


def _poll(data: dict[str, Any]) -> HostCommand:
    dwell = data.get("dwell", 10)
    if not _is_number(dwell) or not MIN_DWELL <= dwell <= MAX_WINDOW:
        raise Invalid("rollcall.dwell", field="dwell", min=MIN_DWELL, max=MAX_WINDOW)
    return Poll(float(dwell))


_PARSERS = {
    "start": lambda data: Start(),
    "call": _call,
    "skip": lambda data: Skip(),
    "excuse": _excuse,
    "poll": _poll,
    "stop_poll": lambda data: StopPoll(),
    "finish": lambda data: Finish(),
    "cancel": lambda data: Cancel(),
}
#: The host's actions, as in ``POST /api/rollcalls/{id}/{action}``.
ACTIONS = tuple(_PARSERS)


def parse_command(action: str, data: dict[str, Any]) -> HostCommand:
    """A host's action and its JSON body as a command; raises Invalid, or NotFound for an unknown action."""
    parser = _PARSERS.get(action)
    if parser is None:
        raise NotFound("rollcall.no_action", action=action)
    return parser(data)


def parse_officer(officer: Any) -> str:
    """The name of the person who answers "到": required, one line, at most 64 characters."""
    name = officer.strip() if isinstance(officer, str) else ""
    if not name:
        raise Invalid("rollcall.officer_required", field="officer")
    if len(name) > OFFICER_MAX:
        raise Invalid("rollcall.officer_length", field="officer", max=OFFICER_MAX)
    if unsafe_reason(name):
        raise Invalid("rollcall.officer_control", field="officer")
    return name
