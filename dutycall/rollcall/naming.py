"""The conference rooms a roll-call and a duty room's console use, by name: made and read here only.

``rollcall-<roll-call id>``: a roll-call's room, where its consoles and hosts meet.
``standby-<duty room id>``: where a duty room's console waits between roll-calls.

Everything else (the web layer's room rules, the console page, which learns names from the
server) asks this module instead of spelling the names out again.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class RoomKind(enum.StrEnum):
    ROLLCALL = "rollcall"
    STANDBY = "standby"


# ASCII digits only ("rollcall-²" passes str.isdigit() but is no roll-call), at most 15 of them.
_NAME = re.compile(r"(rollcall|standby)-([0-9]{1,15})", re.ASCII)


@dataclass(frozen=True)
class ManagedRoom:
    """A room whose name carries a meaning: the roll-call's or duty room's id it names."""

    kind: RoomKind
    id: int

    @property
    def name(self) -> str:
        return f"{self.kind.value}-{self.id}"

    def describe(self) -> dict[str, object]:
        """What the console is told of the room it joined."""
        key = "roll_call_id" if self.kind is RoomKind.ROLLCALL else "duty_room_id"
        return {"kind": self.kind.value, key: self.id}


def rollcall_room(roll_call_id: int) -> str:
    """The conference room of a roll-call: its consoles and hosts meet there."""
    return ManagedRoom(RoomKind.ROLLCALL, roll_call_id).name


def standby_room(duty_room_id: int) -> str:
    """Where a duty room's console waits between roll-calls, seen and reachable."""
    return ManagedRoom(RoomKind.STANDBY, duty_room_id).name


def parse_room(name: str) -> ManagedRoom | None:
    """The roll-call or standby room ``name`` names; None for any other (free-form) name."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    return ManagedRoom(RoomKind(match.group(1)), int(match.group(2)))
