"""A Participant: one endpoint in a room, with its publications and subscriptions."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .publication import Publication
    from .room import Room
    from .subscription import BaseSubscription

logger = logging.getLogger(__name__)

Notify = Callable[[dict[str, Any]], None]


class Participant:
    """One client in a room. ``notify`` delivers server events to it and must not block.

    Its room adds and removes its publications and subscriptions (read them, never change
    them); ``closed`` once it has left.
    """

    def __init__(self, id: str, name: str, room: Room, notify: Notify,
                 identity: dict[str, Any] | None = None, tag: str | None = None,
                 shown: dict[str, Any] | None = None) -> None:
        self.id = id
        self.name = name
        #: Who the transport authenticated (account or duty room); opaque to the conference.
        self.identity = dict(identity or {})
        #: What the layer above files this participant under (e.g. "duty_room:12"); opaque here:
        #: :meth:`Conference.participants_tagged` finds participants by it.
        self.tag = tag
        #: Fields the layer above shows the others besides id and name; opaque here.
        self.shown = dict(shown or {})
        self.room = room
        self._notify = notify
        self.publications: dict[str, Publication] = {}
        self.subscriptions: dict[str, BaseSubscription] = {}
        self.closed = False

    @property
    def room_name(self) -> str:
        """The name of the room this participant is (or was) in."""
        return self.room.name

    def describe(self) -> dict[str, Any]:
        """What the others are told about this participant."""
        return {"participant_id": self.id, "name": self.name, **self.shown}

    def first_publication(self) -> Publication | None:
        """Its first open publication (a console publishes one: its camera and microphone)."""
        return next((p for p in self.publications.values() if not p.closed), None)

    def is_live(self, kind: str, within: float = 3.0) -> bool:
        """One of its publications delivered ``kind`` media in the last ``within`` seconds."""
        return any(p.is_live(kind, within) for p in self.publications.values())

    def notify(self, message: dict[str, Any]) -> None:
        """Queue an event to this client; never blocks, never raises."""
        if self.closed:
            return
        try:
            self._notify(message)
        except Exception:  # a broken client transport must not break the room
            logger.exception("notifying participant %s failed", self.id)
