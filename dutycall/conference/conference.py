"""The Conference: every room of the server, by name."""

from __future__ import annotations

import logging

from . import aiortc_compat
from .room import Room
from .settings import ConferenceSettings

logger = logging.getLogger(__name__)


class Conference:
    """Creates rooms on first use and drops them when the last participant leaves."""

    def __init__(self, settings: ConferenceSettings | None = None) -> None:
        self.settings = settings or ConferenceSettings()
        # aioice gathers host candidates process-wide, so the addresses are a process setting;
        # an empty list leaves it as it is (aioice's default: all of the host's own).
        if self.settings.ice_addresses:
            aiortc_compat.set_host_addresses(self.settings.ice_addresses)
        self.rooms: dict[str, Room] = {}
        self.closed = False

    def room(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None or room.closed:
            room = Room(name, self.settings)
            self.rooms[name] = room
        return room

    def forget_if_empty(self, room: Room) -> None:
        if not room.participants and self.rooms.get(room.name) is room:
            del self.rooms[room.name]

    def stats(self) -> dict[str, int]:
        rooms = list(self.rooms.values())
        return {
            "rooms": len(rooms),
            "participants": sum(len(r.participants) for r in rooms),
            "publications": sum(len(r.publications) for r in rooms),
            "subscriptions": sum(
                len(p.subscriptions) for r in rooms for p in r.participants.values()
            ),
        }

    async def close(self) -> None:
        """Close every room. Idempotent."""
        self.closed = True
        for room in tuple(self.rooms.values()):
            await room.close()
        self.rooms.clear()
