"""Free-form meeting rooms that exist now: who owns each, and whom a host invited (see rooms.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..conference import Conference
from ..directory.errors import NotFound
from ..directory.principal import Principal, PrincipalKind


@dataclass
class FreeRoom:
    owner_unit_path: str
    invited: set[tuple[str, int]] = field(default_factory=set)


class FreeRooms:
    """Owners and invitations of the free-form rooms that exist now."""

    def __init__(self, conference: Conference) -> None:
        self.conference = conference
        self._rooms: dict[str, FreeRoom] = {}

    def get(self, name: str) -> FreeRoom | None:
        if not self.conference.is_occupied(name):
            self._rooms.pop(name, None)  # the room is gone: so are its owner and invitations
            return None
        return self._rooms.get(name)

    def may_join(self, who: Principal, name: str) -> bool:
        existing = self.get(name)
        if existing is None:
            if not who.may("conference.create"):
                return False
            self._rooms[name] = FreeRoom(who.unit_path)
            return True
        if (who.kind, who.duty_room_id if who.kind == PrincipalKind.DEVICE else who.id) in existing.invited:
            return True
        return who.may("conference.create") and who.covers(existing.owner_unit_path)

    def invite(self, who: Principal, name: str, invitee: tuple[str, int]) -> None:
        existing = self.get(name)
        if existing is None or not who.may("conference.create") or not who.covers(existing.owner_unit_path):
            raise NotFound("web.meeting_not_found", name=name)
        existing.invited.add(invitee)
