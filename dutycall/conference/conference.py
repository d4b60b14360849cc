"""The Conference: every room of the server, by name, and the queries its users need.

Other packages ask the conference (``participants_tagged``, ``publication_of``,
``notify_tagged``, ``broadcast``, ``set_floor``, the join/leave hooks) instead of walking
rooms and participants themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from . import aiortc_compat
from .lifecycle import CloseReason
from .participant import Participant
from .publication import Publication
from .room import Room
from .settings import ConferenceSettings
from .workers import MediaWorkers

logger = logging.getLogger(__name__)

OnParticipantJoined = Callable[[Participant], None]
OnParticipantLeft = Callable[[Participant, CloseReason], None]
OnPublished = Callable[[Publication], None]
OnUnpublished = Callable[[Publication, CloseReason], None]


class Conference:
    """Creates rooms on first use and drops them when the last participant leaves."""

    def __init__(self, settings: ConferenceSettings | None = None) -> None:
        self.settings = settings or ConferenceSettings()
        self.settings.make_forwarder()  # an unknown forwarding mode fails at start, not at the first publish
        # aioice gathers host candidates process-wide, so the addresses are a process setting;
        # an empty list leaves it as it is (aioice's default: all of the host's own).
        if self.settings.ice_addresses:
            aiortc_compat.set_host_addresses(self.settings.ice_addresses)
        self.rooms: dict[str, Room] = {}
        self.closed = False
        #: The media worker processes (``start()`` starts ``settings.media_workers`` of them).
        self.workers: MediaWorkers | None = None
        #: Called after a participant joined any room (after the others were told).
        self.on_participant_joined: list[OnParticipantJoined] = []
        #: Called after a participant left any room, with why (after the others were told).
        self.on_participant_left: list[OnParticipantLeft] = []
        #: Called after a publication was added to any room, or removed from it (after the
        #: others were told): what a participant delivers changed (e.g. a console is live).
        self.on_published: list[OnPublished] = []
        self.on_unpublished: list[OnUnpublished] = []
        # Participants by tag: the layer above looks its consoles up often (readiness, ringing).
        self._tagged: dict[str, dict[str, Participant]] = {}

    def room(self, name: str) -> Room:
        """The open room ``name``, created if there is none."""
        room = self.rooms.get(name)
        if room is None or room.closed:
            room = Room(name, self.settings, on_joined=self._joined, on_left=self._left,
                        on_published=self._published, on_unpublished=self._unpublished, workers=self.workers)
            self.rooms[name] = room
        return room

    def find_room(self, name: str) -> Room | None:
        """The open room ``name``, or None (never creates one)."""
        room = self.rooms.get(name)
        return room if room is not None and not room.closed else None

    def is_occupied(self, name: str) -> bool:
        """Room ``name`` is open and someone is in it."""
        room = self.find_room(name)
        return room is not None and bool(room.participants)

    def forget_if_empty(self, room: Room) -> None:
        if not room.participants and self.rooms.get(room.name) is room:
            del self.rooms[room.name]

    # -- queries -----------------------------------------------------------------------

    def participants(self, room: str) -> list[Participant]:
        """Everyone in room ``room`` now, in join order ([] if there is no such room)."""
        found = self.find_room(room)
        return list(found.participants.values()) if found is not None else []

    def participants_tagged(self, tag: str, room: str | None = None) -> list[Participant]:
        """The participants the layer above filed under ``tag`` at join, in any room (or in
        ``room`` only), in join order."""
        found = self._tagged.get(tag)
        if not found:
            return []
        return [p for p in found.values() if not p.closed and (room is None or p.room_name == room)]

    def participants_where(self, match: Callable[[Mapping[str, Any]], bool]) -> list[Participant]:
        """Every participant, in any room, whose identity (given at join) ``match`` accepts."""
        return [p for r in list(self.rooms.values()) for p in list(r.participants.values()) if match(p.identity)]

    def publication_of(self, tag: str, room: str | None = None) -> Publication | None:
        """The first open publication of the first participant tagged ``tag`` that has one."""
        for participant in self.participants_tagged(tag, room):
            publication = participant.first_publication()
            if publication is not None:
                return publication
        return None

    def notify_tagged(self, tag: str, message: dict[str, Any], room: str | None = None) -> int:
        """Send ``message`` to every participant tagged ``tag`` (in ``room`` only, if given);
        returns how many were sent it."""
        participants = self.participants_tagged(tag, room)
        for participant in participants:
            participant.notify(message)
        return len(participants)

    def broadcast(self, room: str, message: dict[str, Any]) -> None:
        """Send ``message`` to everyone in room ``room`` (nobody if there is no such room)."""
        found = self.find_room(room)
        if found is not None:
            found.broadcast(message)

    def set_floor(self, room: str, publication: Publication | None) -> bool:
        """Give room ``room``'s floor to ``publication`` (None: nobody); False if there is no
        such room. Raises NotFound if the publication is not in it."""
        found = self.find_room(room)
        if found is None:
            return False
        found.set_floor(publication)
        return True

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

    # -- hooks -------------------------------------------------------------------------

    def _joined(self, participant: Participant) -> None:
        if participant.tag is not None:
            self._tagged.setdefault(participant.tag, {})[participant.id] = participant
        for hook in tuple(self.on_participant_joined):
            try:
                hook(participant)
            except Exception:  # one observer's bug must not break joining
                logger.exception("on_participant_joined hook failed")

    def _left(self, participant: Participant, reason: CloseReason) -> None:
        if participant.tag is not None:
            tagged = self._tagged.get(participant.tag)
            if tagged is not None:
                tagged.pop(participant.id, None)
                if not tagged:
                    del self._tagged[participant.tag]
        for hook in tuple(self.on_participant_left):
            try:
                hook(participant, reason)
            except Exception:
                logger.exception("on_participant_left hook failed")

    def _published(self, publication: Publication) -> None:
        for hook in tuple(self.on_published):
            try:
                hook(publication)
            except Exception:
                logger.exception("on_published hook failed")

    def _unpublished(self, publication: Publication, reason: CloseReason) -> None:
        for hook in tuple(self.on_unpublished):
            try:
                hook(publication, reason)
            except Exception:
                logger.exception("on_unpublished hook failed")

    async def start(self) -> None:
        """Start the media workers, if any (``settings.media_workers``); RuntimeError if they
        do not come up."""
        if self.settings.media_workers > 0 and self.workers is None:
            workers = MediaWorkers(self.settings.media_workers, self.settings)
            await workers.start()
            self.workers = workers

    def worker_stats(self) -> list[dict[str, Any]]:
        """Per media worker: index, pid, subscriptions, CPU seconds, frames (empty: none run)."""
        return self.workers.worker_stats() if self.workers is not None else []

    async def close(self) -> None:
        """Close every room, then stop the media workers. Idempotent."""
        self.closed = True
        for room in tuple(self.rooms.values()):
            await room.close()
        self.rooms.clear()
        workers, self.workers = self.workers, None
        if workers is not None:
            await workers.close()
