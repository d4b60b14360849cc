"""A Subscription: one publication forwarded to one participant."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiortc import MediaStreamTrack, RTCPeerConnection

from . import aiortc_compat, peer
from .errors import SdpError
from .forwarding import SwitchableTrack
from .sdp import Offer
from .settings import ConferenceSettings

if TYPE_CHECKING:
    from .participant import Participant
    from .publication import Publication

logger = logging.getLogger(__name__)

FLOOR_CODECS = {"video": "VP8", "audio": "opus"}


class Subscription:
    """Forwards a publication's tracks to a subscriber over its own peer connection."""

    def __init__(
        self, id: str, participant: "Participant", publication: "Publication | None", settings: ConferenceSettings
    ) -> None:
        self.id = id
        self.participant = participant
        #: None for a floor subscription: its tracks follow whoever has the room's floor.
        self.publication = publication
        self.pc = RTCPeerConnection(settings.rtc_configuration())
        self.tracks: list[MediaStreamTrack] = []
        self.closed = False
        self.close_reason: str | None = None

    @property
    def floor(self) -> bool:
        return self.publication is None

    async def negotiate_floor(self, offer: Offer) -> str:
        """Answer a recvonly offer with switchable tracks (VP8 video, Opus audio)."""

        def add_transceivers() -> None:
            for section in offer.media:
                track = SwitchableTrack(section.kind)
                self.tracks.append(track)
                transceiver = self.pc.addTransceiver(track, direction="sendonly")
                # Every publisher must be forwardable to the same receiver: the floor is VP8.
                codec = FLOOR_CODECS[section.kind]
                transceiver.setCodecPreferences(peer.codec_preferences(section.kind, codec))
                aiortc_compat.on_keyframe_request(transceiver.sender, track.request_keyframe)

        try:
            sdp = await peer.answer(self.pc, offer, passthrough=False, before_remote=add_transceivers)
        except Exception:
            self._stop_tracks()
            raise
        peer.watch_connection(self.pc, self._connection_dead)
        return sdp

    def follow(self, publication: "Publication | None") -> None:
        """Point a floor subscription's tracks at ``publication`` (None: nobody)."""
        for track in self.tracks:
            forwarder = publication.forwarders.get(track.kind) if publication is not None else None
            if forwarder is not None and publication is not None and (
                    publication.codecs.get(track.kind, "").split("/")[-1].upper() != FLOOR_CODECS[track.kind].upper()):
                logger.warning("publication %s sends %s: it cannot take the floor", publication.id,
                               publication.codecs.get(track.kind))
                forwarder = None
            track.switch(forwarder)  # type: ignore[attr-defined]

    async def negotiate(self, offer: Offer) -> str:
        """Answer the subscriber's recvonly offer with the publication's tracks."""
        assert self.publication is not None
        missing = [k for k in offer.kinds if k not in self.publication.forwarders]
        if missing:
            raise SdpError(
                f"publication {self.publication.id} has no {', '.join(missing)} "
                f"(it has {', '.join(self.publication.kinds) or 'nothing'})"
            )

        def add_transceivers() -> None:
            for section in offer.media:
                forwarder = self.publication.forwarders[section.kind]
                track = forwarder.subscribe()
                self.tracks.append(track)
                transceiver = self.pc.addTransceiver(track, direction="sendonly")
                # The subscriber must receive exactly the publisher's codec: we
                # forward its packets, we do not re-encode them.
                codec = self.publication.codecs[section.kind].split("/")[1]
                transceiver.setCodecPreferences(peer.codec_preferences(section.kind, codec))
                if hasattr(track, "request_keyframe"):
                    aiortc_compat.on_keyframe_request(transceiver.sender, track.request_keyframe)

        try:
            sdp = await peer.answer(self.pc, offer, passthrough=False, before_remote=add_transceivers)
        except Exception:
            self._stop_tracks()
            raise
        peer.watch_connection(self.pc, self._connection_dead)
        return sdp

    def _connection_dead(self, reason: str) -> None:
        if not self.closed:
            asyncio.ensure_future(self.participant.room.unsubscribe(self, reason))

    def _stop_tracks(self) -> None:
        for track in self.tracks:
            track.stop()

    async def close(self, reason: str = "closed") -> None:
        """Stop forwarding and close the connection. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self._stop_tracks()
        if self.publication is not None:
            self.publication.subscriptions.discard(self)
        else:
            self.participant.room.floor_subscriptions.discard(self)
        self.participant.subscriptions.pop(self.id, None)
        await self.pc.close()
