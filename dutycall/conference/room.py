"""A Room: participants, their publications and subscriptions, and the events between them."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from .errors import InvalidState, LimitExceeded, NotFound
from .participant import Notify, Participant
from .publication import Publication
from .sdp import Offer
from .settings import ConferenceSettings
from .subscription import Subscription

logger = logging.getLogger(__name__)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


class Room:
    """Everything in one room. Every change goes through here, so events stay in order."""

    def __init__(self, name: str, settings: ConferenceSettings) -> None:
        self.name = name
        self.settings = settings
        self.participants: dict[str, Participant] = {}
        self.closed = False
        #: The publication everyone's floor subscription follows (see set_floor).
        self.floor: Publication | None = None
        self.floor_subscriptions: set[Subscription] = set()

    # -- lookups ---------------------------------------------------------------

    @property
    def publications(self) -> dict[str, Publication]:
        return {
            pub.id: pub for p in self.participants.values() for pub in p.publications.values()
        }

    def get_publication(self, publication_id: object) -> Publication:
        pub = self.publications.get(publication_id) if isinstance(publication_id, str) else None
        if pub is None:
            raise NotFound(f"no publication {publication_id!r} in room {self.name!r}")
        return pub

    def snapshot(self) -> dict[str, Any]:
        """The room as a newcomer sees it."""
        return {
            "room": self.name,
            "participants": [p.describe() for p in self.participants.values()],
            "publications": [pub.describe() for pub in self.publications.values()],
            # Who has the floor now: a floor subscription made later starts with it.
            "floor": {"publication_id": self.floor.id, "participant_id": self.floor.participant.id}
            if self.floor is not None else None,
        }

    def broadcast(self, message: dict[str, Any], exclude: Participant | None = None) -> None:
        for participant in tuple(self.participants.values()):
            if participant is not exclude:
                participant.notify(message)

    def _check_open(self) -> None:
        if self.closed:
            raise InvalidState(f"room {self.name!r} is closed")

    # -- participants ------------------------------------------------------------

    def join(self, name: str, notify: Notify, identity: dict[str, Any] | None = None) -> Participant:
        self._check_open()
        if len(self.participants) >= self.settings.max_participants_per_room:
            raise LimitExceeded(f"room {self.name!r} is full")
        participant = Participant(new_id("p"), name, self, notify, identity)
        self.participants[participant.id] = participant
        logger.info("room %s: %s (%s) joined", self.name, participant.id, name)
        self.broadcast({"type": "participant_joined", **participant.describe()}, exclude=participant)
        return participant

    async def leave(self, participant: Participant, reason: str = "left") -> None:
        """Remove a participant with all it publishes and receives. Idempotent."""
        if participant.closed:
            return
        for publication in tuple(participant.publications.values()):
            await self.unpublish(publication, reason)
        for subscription in tuple(participant.subscriptions.values()):
            await subscription.close(reason)
        participant.closed = True
        self.participants.pop(participant.id, None)
        logger.info("room %s: %s left (%s)", self.name, participant.id, reason)
        self.broadcast({"type": "participant_left", **participant.describe(), "reason": reason})

    # -- publications --------------------------------------------------------------

    async def publish(
        self, participant: Participant, offer: Offer, label: str, video_codec: str | None
    ) -> tuple[Publication, str]:
        self._check_open()
        if participant.closed:
            raise InvalidState("participant has left")
        if len(participant.publications) >= self.settings.max_publications_per_participant:
            raise LimitExceeded("too many publications")
        publication = Publication(new_id("pub"), participant, label, self.settings)
        sdp = await publication.negotiate(offer, video_codec)
        if participant.closed or self.closed:
            await publication.close("participant_left")
            raise InvalidState("participant left while publishing")
        participant.publications[publication.id] = publication
        self.broadcast({"type": "publication_added", **publication.describe()}, exclude=participant)
        return publication, sdp

    async def unpublish(self, publication: Publication, reason: str = "unpublished") -> None:
        """Close a publication and tell everyone, the publisher included. Idempotent."""
        if publication.closed:
            return
        if self.floor is publication:
            self.set_floor(None)
        publication.participant.publications.pop(publication.id, None)
        for subscription in tuple(publication.subscriptions):
            subscription.participant.notify(
                {"type": "subscription_closed", "subscription_id": subscription.id,
                 "publication_id": publication.id, "reason": "publication_closed"}
            )
        await publication.close(reason)
        self.broadcast(
            {"type": "publication_removed", "publication_id": publication.id,
             "participant_id": publication.participant.id, "reason": reason}
        )

    # -- subscriptions ---------------------------------------------------------------

    async def subscribe(
        self, participant: Participant, publication_id: object, offer: Offer
    ) -> tuple[Subscription, str]:
        self._check_open()
        publication = self.get_publication(publication_id)
        if publication.participant is participant:
            raise InvalidState("cannot subscribe to your own publication")
        if len(participant.subscriptions) >= self.settings.max_subscriptions_per_participant:
            raise LimitExceeded("too many subscriptions")
        subscription = Subscription(new_id("sub"), participant, publication, self.settings)
        sdp = await subscription.negotiate(offer)
        if publication.closed or participant.closed:
            await subscription.close("publication_closed")
            raise NotFound(f"publication {publication.id} closed while subscribing")
        publication.subscriptions.add(subscription)
        participant.subscriptions[subscription.id] = subscription
        return subscription, sdp

    async def subscribe_floor(self, participant: Participant, offer: Offer) -> tuple[Subscription, str]:
        """One subscription that always carries whoever has the floor."""
        self._check_open()
        if len(participant.subscriptions) >= self.settings.max_subscriptions_per_participant:
            raise LimitExceeded("too many subscriptions")
        subscription = Subscription(new_id("sub"), participant, None, self.settings)
        sdp = await subscription.negotiate_floor(offer)
        if participant.closed:
            await subscription.close("participant_left")
            raise InvalidState("participant left while subscribing")
        participant.subscriptions[subscription.id] = subscription
        self.floor_subscriptions.add(subscription)
        subscription.follow(self.floor)
        return subscription, sdp

    def set_floor(self, publication: Publication | None) -> None:
        """Give the floor: every floor subscription switches to ``publication`` (None: nobody)."""
        if publication is not None and (publication.closed or publication.participant.room is not self):
            raise NotFound("that publication is not in this room")
        self.floor = publication
        for subscription in tuple(self.floor_subscriptions):
            subscription.follow(publication)
        self.broadcast({"type": "floor", "publication_id": publication.id if publication else None,
                        "participant_id": publication.participant.id if publication else None})

    async def unsubscribe(self, subscription: Subscription, reason: str = "unsubscribed") -> None:
        if subscription.closed:
            return
        await subscription.close(reason)
        if reason != "unsubscribed":
            subscription.participant.notify(
                {"type": "subscription_closed", "subscription_id": subscription.id,
                 "publication_id": subscription.publication.id if subscription.publication else None,
                 "reason": reason}
            )

    # -- room --------------------------------------------------------------------------

    async def close(self) -> None:
        """Close every participant and the room. Idempotent."""
        if self.closed:
            return
        self.closed = True
        for participant in tuple(self.participants.values()):
            participant.notify({"type": "room_closed", "room": self.name})
            await self.leave(participant, "room_closed")
