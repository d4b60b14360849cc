"""Subscriptions: a publication forwarded to one participant, or the room's floor.

Both own a peer connection to the subscriber. Neither removes itself from anything: it
reports to the callbacks its room registered, ``on_ended`` when its connection dies by
itself (the room then closes it) and ``on_close`` once it is closed by anyone (the room
then forgets it and tells the subscriber).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiortc import MediaStreamTrack, RTCPeerConnection

from ..messages import Msg
from . import aiortc_compat, peer
from .errors import SdpError
from .forwarding import ForwardedTrack, SwitchableTrack, TrackForwarder
from .lifecycle import CloseReason
from .sdp import Offer
from .settings import ConferenceSettings

if TYPE_CHECKING:
    from .participant import Participant
    from .publication import Publication

logger = logging.getLogger(__name__)

#: The floor's codecs: every publisher must be forwardable to the same receiver.
FLOOR_CODECS = {"video": "VP8", "audio": "opus"}

OnSubscriptionEvent = Callable[["BaseSubscription", CloseReason], None]


class BaseSubscription:
    """What both kinds of subscription share: the subscriber, the connection, the close."""

    #: True for a :class:`FloorSubscription`.
    floor = False

    def __init__(self, id: str, participant: Participant, settings: ConferenceSettings,
                 on_close: OnSubscriptionEvent | None = None, on_ended: OnSubscriptionEvent | None = None) -> None:
        self.id = id
        self.participant = participant
        self.pc = RTCPeerConnection(settings.rtc_configuration())
        self.tracks: list[MediaStreamTrack] = []
        self.closed = False
        self.close_reason: CloseReason | None = None
        self._on_close = on_close
        self._on_ended = on_ended

    @property
    def publication_id(self) -> str | None:
        """The publication it carries (for a floor subscription: None)."""
        return None

    async def _answer(self, offer: Offer, add_transceivers: Callable[[], None]) -> str:
        try:
            sdp = await peer.answer(self.pc, offer, passthrough=False, before_remote=add_transceivers)
        except Exception:
            self._stop_tracks()
            raise
        peer.watch_connection(self.pc, self._ended)
        return sdp

    def _ended(self, reason: CloseReason) -> None:
        """The connection died by itself: tell the room, once; it will close us."""
        callback, self._on_ended = self._on_ended, None
        if callback is not None and not self.closed:
            callback(self, reason)

    def _stop_tracks(self) -> None:
        for track in self.tracks:
            track.stop()

    async def close(self, reason: CloseReason = CloseReason.CLOSED) -> None:
        """Stop forwarding and close the connection; reports to ``on_close`` once. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self._on_ended = None
        self._stop_tracks()
        # Reported before the connection's teardown, so the subscriber hears of it at once.
        callback, self._on_close = self._on_close, None
        if callback is not None:
            try:
                callback(self, reason)
            except Exception:  # the owner's bookkeeping must not stop the teardown
                logger.exception("subscription %s: on_close failed", self.id)
        await self.pc.close()


class Subscription(BaseSubscription):
    """Forwards a publication's tracks to a subscriber over its own peer connection."""

    def __init__(self, id: str, participant: Participant, publication: Publication,
                 settings: ConferenceSettings, on_close: OnSubscriptionEvent | None = None,
                 on_ended: OnSubscriptionEvent | None = None) -> None:
        super().__init__(id, participant, settings, on_close, on_ended)
        self.publication = publication

    @property
    def publication_id(self) -> str | None:
        return self.publication.id

    def _check_kinds(self, offer: Offer) -> None:
        publication = self.publication
        missing = [k for k in offer.kinds if k not in publication.forwarders]
        if missing:
            raise SdpError("sdp.missing_kinds", id=publication.id, missing=", ".join(missing),
                           has=", ".join(publication.kinds) or Msg("sdp.nothing"))

    async def negotiate(self, offer: Offer) -> str:
        """Answer the subscriber's recvonly offer with the publication's tracks."""
        publication = self.publication
        self._check_kinds(offer)

        def add_transceivers() -> None:
            for section in offer.media:
                track = publication.forwarders[section.kind].subscribe()
                self.tracks.append(track)
                transceiver = self.pc.addTransceiver(track, direction="sendonly")
                if isinstance(track, ForwardedTrack):  # encoded packets (a benchmark's relay yields frames)
                    aiortc_compat.forward_packets(transceiver.sender)
                # The subscriber must receive exactly the publisher's codec: we
                # forward its packets, we do not re-encode them.
                codec = publication.codec_name(section.kind)
                transceiver.setCodecPreferences(peer.codec_preferences(section.kind, codec))
                if hasattr(track, "request_keyframe"):
                    aiortc_compat.on_keyframe_request(transceiver.sender, track.request_keyframe)

        return await self._answer(offer, add_transceivers)

    async def publication_closed(self) -> None:
        """Its publication is closing (called by the publication, its parent)."""
        await self.close(CloseReason.PUBLICATION_CLOSED)


class FloorSubscription(BaseSubscription):
    """One connection for a whole roll-call whose tracks carry whoever has the room's floor."""

    floor = True

    async def negotiate(self, offer: Offer) -> str:
        """Answer a recvonly offer with switchable tracks (VP8 video, Opus audio)."""

        def add_transceivers() -> None:
            for section in offer.media:
                track = SwitchableTrack(section.kind)
                self.tracks.append(track)
                transceiver = self.pc.addTransceiver(track, direction="sendonly")
                aiortc_compat.forward_packets(transceiver.sender)
                transceiver.setCodecPreferences(peer.codec_preferences(section.kind, FLOOR_CODECS[section.kind]))
                aiortc_compat.on_keyframe_request(transceiver.sender, track.request_keyframe)

        return await self._answer(offer, add_transceivers)

    def follow(self, publication: Publication | None) -> None:
        """Point the tracks at ``publication`` (None: nobody)."""
        for track in self.tracks:
            assert isinstance(track, SwitchableTrack)
            forwarder = publication.forwarder(track.kind) if publication is not None else None
            if publication is not None and forwarder is not None and (
                    (publication.codec_name(track.kind) or "").upper() != FLOOR_CODECS[track.kind].upper()
                    or not isinstance(forwarder, TrackForwarder)):
                logger.warning("publication %s sends %s: it cannot take the floor", publication.id,
                               publication.codecs.get(track.kind))
                forwarder = None
            track.switch(forwarder if isinstance(forwarder, TrackForwarder) else None)
