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

    def __init__(self, id: str, name: str, room: "Room", notify: Notify) -> None:
        self.id = id
        self.name = name
        self.room = room
        self._notify = notify
        self.publications: dict[str, "Publication"] = {}
        self.subscriptions: dict[str, "Subscription"] = {}
        self.closed = False

    def describe(self) -> dict[str, Any]:
        return {"participant_id": self.id, "name": self.name}

    def notify(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            self._notify(message)
        except Exception:  # a broken client transport must not break the room
            logger.exception("notifying participant %s failed", self.id)
