"""A Participant: one endpoint in a room, with its publications and subscriptions."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .publication import Publication
    from .room import Room
    from .subscription import Subscription

logger = logging.getLogger(__name__)

Notify = Callable[[dict[str, Any]], None]


class Participant:
    """One client in a room. ``notify`` delivers server events to it and must not block."""

    def __init__(self, id: str, name: str, room: "Room", notify: Notify,
                 identity: dict[str, Any] | None = None) -> None:
        self.id = id
        self.name = name
        #: Who the transport authenticated (account or duty room); opaque to the conference.
        self.identity = dict(identity or {})
        self.room = room
        self._notify = notify
        self.publications: dict[str, "Publication"] = {}
        self.subscriptions: dict[str, "Subscription"] = {}
        self.closed = False

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"participant_id": self.id, "name": self.name}
        if self.identity.get("duty_room_id") is not None:
            described["duty_room_id"] = self.identity["duty_room_id"]
        return described

    def notify(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            self._notify(message)
        except Exception:  # a broken client transport must not break the room
            logger.exception("notifying participant %s failed", self.id)
