"""Presence: where each duty room's console is connected, and whether it is sending.

A console joins the conference tagged with its duty room (:func:`console_tag`); this
module asks the conference's public queries by that tag and never walks its rooms.
"""

from __future__ import annotations

from typing import Any

from ..conference import Conference, Publication, is_live
from .naming import rollcall_room

#: Consoles are filed in the conference under "duty_room:<id>" (the signalling layer tags them).
CONSOLE_TAG = "duty_room:"


def console_tag(duty_room_id: int) -> str:
    """The conference tag of a duty room's consoles."""
    return f"{CONSOLE_TAG}{duty_room_id}"


def duty_room_of(tag: str | None) -> int | None:
    """The duty room a participant's tag names; None for anyone but a console."""
    if tag is None or not tag.startswith(CONSOLE_TAG):
        return None
    try:
        return int(tag[len(CONSOLE_TAG):])
    except ValueError:
        return None


class Presence:
    """Which consoles are where, answered by the conference; and the messages sent to them."""

    def __init__(self, conference: Conference) -> None:
        self.conference = conference

    def publication(self, roll_call_id: int, duty_room_id: int) -> Publication | None:
        """The console's publication in the roll-call's room, if it publishes there."""
        return self.conference.publication_of(console_tag(duty_room_id), rollcall_room(roll_call_id))

    def is_connected(self, roll_call_id: int, duty_room_id: int) -> bool:
        """A console of the room is in the roll-call's conference room and publishing."""
        return self.publication(roll_call_id, duty_room_id) is not None

    def readiness(self, room_ids: list[int], fresh: float = 3.0) -> dict[int, list[str]]:
        """For each duty room, what stops it taking part now: [] when ready, else "offline"
        (no console connected anywhere), "no_video" / "no_audio" (nothing for ``fresh`` s)."""
        result: dict[int, list[str]] = {}
        for room_id in room_ids:
            tag = console_tag(room_id)
            if not self.conference.participants_tagged(tag):
                result[room_id] = ["offline"]
                continue
            # On standby or in a roll-call: a console counts wherever it is connected.
            publication = self.conference.publication_of(tag)
            result[room_id] = [f"no_{kind}" for kind in ("video", "audio")
                               if publication is None or not is_live(publication, kind, fresh)]
        return result

    def invite(self, roll_call_id: int, room_ids: set[int]) -> int:
        """Ask the consoles of ``room_ids``, wherever they are connected, into the roll-call's room."""
        room = rollcall_room(roll_call_id)
        invited = 0
        for room_id in room_ids:
            for participant in self.conference.participants_tagged(console_tag(room_id)):
                if participant.room_name != room:
                    participant.notify({"type": "rollcall_invite", "roll_call_id": roll_call_id, "room": room})
                    invited += 1
        return invited

    def notify(self, roll_call_id: int, duty_room_id: int, message: dict[str, Any]) -> None:
        """Send ``message`` to the room's consoles in the roll-call's room only."""
        self.conference.notify_tagged(console_tag(duty_room_id), message, rollcall_room(roll_call_id))

    def broadcast(self, roll_call_id: int, message: dict[str, Any]) -> None:
        """Send ``message`` to everyone in the roll-call's room."""
        self.conference.broadcast(rollcall_room(roll_call_id), message)

    def give_floor(self, roll_call_id: int, duty_room_id: int | None) -> Publication | None:
        """Switch every floor subscription of the roll-call's room to ``duty_room_id``'s own
        stream (None: nobody's); returns that stream's publication, if it publishes."""
        publication = self.publication(roll_call_id, duty_room_id) if duty_room_id else None
        self.conference.set_floor(rollcall_room(roll_call_id), publication)
        return publication
