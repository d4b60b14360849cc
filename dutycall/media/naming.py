"""The conference rooms incident footage is published in, by name: made and read here only.

``footage-<incident id>``: every live source of one incident (a WHIP encoder, later RTSP pulls
and field phones) publishes there; who may watch is the web layer's rule (``web/rooms.py``).
Like ``rollcall/naming.py``: nothing else spells these names out.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class FootageRoomKind(enum.StrEnum):
    FOOTAGE = "footage"


# ASCII digits only, at most 15 of them (as rollcall/naming.py).
_NAME = re.compile(r"(footage)-([0-9]{1,15})", re.ASCII)


@dataclass(frozen=True)
class FootageRoom:
    """The room of one incident's footage."""

    kind: FootageRoomKind
    incident_id: int

    @property
    def name(self) -> str:
        return f"{self.kind.value}-{self.incident_id}"

    def describe(self) -> dict[str, object]:
        """What a client is told of the room it joined."""
        return {"kind": self.kind.value, "incident_id": self.incident_id}


def footage_room(incident_id: int) -> str:
    """The conference room where an incident's sources publish."""
    return FootageRoom(FootageRoomKind.FOOTAGE, incident_id).name


def parse_footage_room(name: str) -> FootageRoom | None:
    """The incident footage room ``name`` names; None for any other name."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    return FootageRoom(FootageRoomKind(match.group(1)), int(match.group(2)))
