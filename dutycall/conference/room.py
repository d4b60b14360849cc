"""A Room: participants, their publications and subscriptions, and the events between them.

The room is the one place membership changes. It closes its children (participants'
publications, then subscriptions) and they never reach up: a publication or subscription
that ends by itself reports to the callbacks the room registered, and the room removes it
and tells everyone. Each removal runs once; a second caller waits for the first to finish,
so its events are sent once and in order.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

from .errors import InvalidState, LimitExceeded, NotFound
from .lifecycle import SUBSCRIBER_CAUSED, CloseReason, Tasks
from .participant import Notify, Participant
from .publication import Publication
from .sdp import Offer
from .settings import ConferenceSettings
from .subscription import BaseSubscription, FloorSubscription, Subscription
from .workers import MediaWorkers, RemoteSubscription

logger = logging.getLogger(__name__)

OnJoined = Callable[[Participant], None]
OnLeft = Callable[[Participant, CloseReason], None]
OnPublished = Callable[[Publication], None]
OnUnpublished = Callable[[Publication, CloseReason], None]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


class Room:
    """Everything in one room. Every change goes through here, so events stay in order."""

    def __init__(self, name: str, settings: ConferenceSettings,
                 on_joined: OnJoined | None = None, on_left: OnLeft | None = None,
                 on_published: OnPublished | None = None, on_unpublished: OnUnpublished | None = None,
                 workers: MediaWorkers | None = None) -> None:
        self.name = name
        self.settings = settings
        #: Where subscriptions to publications go when media workers run (None: here).
        self.workers = workers
        self.participants: dict[str, Participant] = {}
        self.closed = False
        #: The publication everyone's floor subscription follows (see set_floor).
        self.floor: Publication | None = None
        self.floor_subscriptions: set[FloorSubscription] = set()
        self._on_joined = on_joined
        self._on_left = on_left
        self._on_published = on_published
        self._on_unpublished = on_unpublished
        #: Removals under way (a leave, an unpublish), by what is being removed.
        self._removals: dict[object, asyncio.Task[None]] = {}
        self._tasks = Tasks(f"room {name}")

    # -- lookups ---------------------------------------------------------------

    @property
    def publications(self) -> dict[str, Publication]:
        return {
            pub.id: pub for p in self.participants.values() for pub in p.publications.values()
        }

    def get_publication(self, publication_id: object) -> Publication:
        pub = self.publications.get(publication_id) if isinstance(publication_id, str) else None
        if pub is None:
            raise NotFound("conference.no_publication_in_room", id=publication_id, room=self.name)
        return pub

    def participants_tagged(self, tag: str) -> list[Participant]:
        """The participants here filed under ``tag`` by the layer above, in join order."""
        return [p for p in self.participants.values() if p.tag == tag]

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
        """Send ``message`` to everyone here (but ``exclude``)."""
        for participant in tuple(self.participants.values()):
            if participant is not exclude:
                participant.notify(message)

    def _check_open(self) -> None:
        if self.closed:
            raise InvalidState("conference.room_closed", room=self.name)

    async def _once(self, child: object, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Remove ``child`` by ``work`` once: a caller arriving while it runs waits for it."""
        task = self._removals.get(child)
        if task is None:
            task = self._start_once(child, work)
        if task is not asyncio.current_task():
            await asyncio.shield(task)

    def _start_once(self, child: object, work: Callable[[], Coroutine[Any, Any, None]]) -> asyncio.Task[None]:
        task = self._removals.get(child)
        if task is None:
            task = self._removals[child] = self._tasks.spawn(work())
            task.add_done_callback(lambda _: self._removals.pop(child, None))
        return task

    # -- participants ------------------------------------------------------------

    def join(self, name: str, notify: Notify, identity: dict[str, Any] | None = None,
             tag: str | None = None, shown: dict[str, Any] | None = None) -> Participant:
        """Add a participant; ``tag`` and ``shown`` are the layer above's, opaque here."""
        self._check_open()
        if len(self.participants) >= self.settings.max_participants_per_room:
            raise LimitExceeded("conference.room_full", room=self.name)
        participant = Participant(new_id("p"), name, self, notify, identity, tag, shown)
        self.participants[participant.id] = participant
        logger.info("room %s: %s (%s) joined", self.name, participant.id, name)
        self.broadcast({"type": "participant_joined", **participant.describe()}, exclude=participant)
        if self._on_joined is not None:
            self._on_joined(participant)
        return participant

    async def leave(self, participant: Participant, reason: CloseReason = CloseReason.LEFT) -> None:
        """Remove a participant with all it publishes and receives. Idempotent."""
        if participant.closed and participant not in self._removals:
            return
        await self._once(participant, lambda: self._leave(participant, reason))

    async def _leave(self, participant: Participant, reason: CloseReason) -> None:
        for publication in tuple(participant.publications.values()):
            await self.unpublish(publication, reason)
        for subscription in tuple(participant.subscriptions.values()):
            await subscription.close(reason)
        participant.closed = True
        self.participants.pop(participant.id, None)
        logger.info("room %s: %s left (%s)", self.name, participant.id, reason)
        self.broadcast({"type": "participant_left", **participant.describe(), "reason": reason})
        if self._on_left is not None:
            self._on_left(participant, reason)

    # -- publications --------------------------------------------------------------

    async def publish(
        self, participant: Participant, offer: Offer, label: str, video_codec: str | None
    ) -> tuple[Publication, str]:
        self._check_open()
        if participant.closed:
            raise InvalidState("conference.participant_left")
        if len(participant.publications) >= self.settings.max_publications_per_participant:
            raise LimitExceeded("conference.too_many_publications")
        publication = Publication(new_id("pub"), participant, label, self.settings, on_ended=self._publication_ended)
        sdp = await publication.negotiate(offer, video_codec)
        if participant.closed or self.closed or publication.closed:
            await publication.close(CloseReason.PARTICIPANT_LEFT)
            raise InvalidState("conference.left_while_publishing")
        participant.publications[publication.id] = publication
        self.broadcast({"type": "publication_added", **publication.describe()}, exclude=participant)
        if self._on_published is not None:
            self._on_published(publication)
        return publication, sdp

    def _publication_ended(self, publication: Publication, reason: CloseReason) -> None:
        """A publication's connection or media died: remove it."""
        if publication.participant.publications.get(publication.id) is publication:
            self._start_once(publication, lambda: self._unpublish(publication, reason))
        else:  # still negotiating: publish() sees it closed and refuses
            self._tasks.spawn(publication.close(reason))

    async def unpublish(self, publication: Publication, reason: CloseReason = CloseReason.UNPUBLISHED) -> None:
        """Close a publication and tell everyone, the publisher included. Idempotent."""
        if publication.closed and publication not in self._removals:
            return
        await self._once(publication, lambda: self._unpublish(publication, reason))

    async def _unpublish(self, publication: Publication, reason: CloseReason) -> None:
        if self.floor is publication:
            self.set_floor(None)
        publication.participant.publications.pop(publication.id, None)
        # Each subscription to it closes, and _subscription_closed tells its subscriber.
        await publication.close(reason)
        self.broadcast(
            {"type": "publication_removed", "publication_id": publication.id,
             "participant_id": publication.participant.id, "reason": reason}
        )
        if self._on_unpublished is not None:
            self._on_unpublished(publication, reason)

    # -- subscriptions ---------------------------------------------------------------

    async def subscribe(
        self, participant: Participant, publication_id: object, offer: Offer
    ) -> tuple[Subscription, str]:
        self._check_open()
        publication = self.get_publication(publication_id)
        if publication.participant is participant:
            raise InvalidState("conference.own_publication")
        if len(participant.subscriptions) >= self.settings.max_subscriptions_per_participant:
            raise LimitExceeded("conference.too_many_subscriptions")
        link = self.workers.place(publication) if self.workers is not None else None
        if link is not None:  # its connection lives in a media worker, the publication piped there
            subscription: Subscription = RemoteSubscription(
                new_id("sub"), participant, publication, link,
                on_close=self._subscription_closed, on_ended=self._subscription_ended)
        else:
            subscription = Subscription(new_id("sub"), participant, publication, self.settings,
                                        on_close=self._subscription_closed, on_ended=self._subscription_ended)
        sdp = await subscription.negotiate(offer)
        if publication.closed or participant.closed or subscription.closed:
            await subscription.close(CloseReason.PUBLICATION_CLOSED)
            raise NotFound("conference.publication_closed", id=publication.id)
        publication.attach(subscription)
        participant.subscriptions[subscription.id] = subscription
        return subscription, sdp

    async def subscribe_floor(self, participant: Participant, offer: Offer) -> tuple[FloorSubscription, str]:
        """One subscription that always carries whoever has the floor."""
        self._check_open()
        if len(participant.subscriptions) >= self.settings.max_subscriptions_per_participant:
            raise LimitExceeded("conference.too_many_subscriptions")
        subscription = FloorSubscription(new_id("sub"), participant, self.settings,
                                         on_close=self._subscription_closed, on_ended=self._subscription_ended)
        sdp = await subscription.negotiate(offer)
        if participant.closed or subscription.closed:
            await subscription.close(CloseReason.PARTICIPANT_LEFT)
            raise InvalidState("conference.left_while_subscribing")
        participant.subscriptions[subscription.id] = subscription
        self.floor_subscriptions.add(subscription)
        subscription.follow(self.floor)
        return subscription, sdp

    def set_floor(self, publication: Publication | None) -> None:
        """Give the floor: every floor subscription switches to ``publication`` (None: nobody)."""
        if publication is not None and (publication.closed or publication.participant.room is not self):
            raise NotFound("conference.publication_not_here")
        self.floor = publication
        for subscription in tuple(self.floor_subscriptions):
            subscription.follow(publication)
        self.broadcast({"type": "floor", "publication_id": publication.id if publication else None,
                        "participant_id": publication.participant.id if publication else None})

    async def unsubscribe(self, subscription: BaseSubscription,
                          reason: CloseReason = CloseReason.UNSUBSCRIBED) -> None:
        """Close a subscription (the subscriber is told unless it asked). Idempotent."""
        await subscription.close(reason)

    def _subscription_ended(self, subscription: BaseSubscription, reason: CloseReason) -> None:
        """A subscription's connection died: close it (``_subscription_closed`` follows)."""
        self._tasks.spawn(subscription.close(reason))

    def _subscription_closed(self, subscription: BaseSubscription, reason: CloseReason) -> None:
        """A subscription closed, whoever closed it: forget it and tell its subscriber."""
        participant = subscription.participant
        if participant.subscriptions.get(subscription.id) is not subscription:
            return  # never added: it failed while negotiating, and the request says so
        del participant.subscriptions[subscription.id]
        if isinstance(subscription, FloorSubscription):
            self.floor_subscriptions.discard(subscription)
        elif isinstance(subscription, Subscription):
            subscription.publication.detach(subscription)
        if reason not in SUBSCRIBER_CAUSED:
            participant.notify({"type": "subscription_closed", "subscription_id": subscription.id,
                                "publication_id": subscription.publication_id, "reason": reason})

    # -- room --------------------------------------------------------------------------

    async def close(self) -> None:
        """Close every participant and the room, and wait for everything under it. Idempotent."""
        self.closed = True  # refuse joins, publications and subscriptions from now on
        await self._once(self, self._close)

    async def _close(self) -> None:
        for participant in tuple(self.participants.values()):
            participant.notify({"type": "room_closed", "room": self.name})
            await self.leave(participant, CloseReason.ROOM_CLOSED)
        # What children reported meanwhile (a connection that died as it closed, say).
        await self._tasks.wait()
