"""A Publication: the tracks one participant sends in, over its own peer connection."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from aiortc import RTCPeerConnection

from . import aiortc_compat, peer
from .forwarding import TrackForwarder, TranscodingForwarder
from .sdp import Offer
from .settings import ConferenceSettings

if TYPE_CHECKING:
    from .participant import Participant
    from .subscription import Subscription

logger = logging.getLogger(__name__)


class Publication:
    """Media published by one participant; owns its peer connection and forwarders."""

    def __init__(self, id: str, participant: "Participant", label: str, settings: ConferenceSettings) -> None:
        self.id = id
        self.participant = participant
        self.label = label
        self.settings = settings
        self.pc = RTCPeerConnection(settings.rtc_configuration())
        self.forwarders: dict[str, TrackForwarder | TranscodingForwarder] = {}
        self.codecs: dict[str, str] = {}
        self.subscriptions: set["Subscription"] = set()
        self.closed = False
        self.close_reason: str | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self.created_at = time.monotonic()

    @property
    def kinds(self) -> list[str]:
        return sorted(self.forwarders)

    def describe(self) -> dict[str, Any]:
        """What other participants are told about this publication."""
        return {
            "publication_id": self.id,
            "participant_id": self.participant.id,
            "name": self.participant.name,
            "label": self.label,
            "kinds": self.kinds,
            "codecs": dict(self.codecs),
        }

    async def negotiate(self, offer: Offer, video_codec: str | None) -> str:
        """Answer the publisher's offer and start forwarding; raises SdpError on failure."""
        passthrough = self.settings.forwarding == "passthrough"

        def add_transceivers() -> None:
            for section in offer.media:
                transceiver = self.pc.addTransceiver(section.kind, direction="recvonly")
                only = video_codec if section.kind == "video" else None
                transceiver.setCodecPreferences(peer.codec_preferences(section.kind, only))

        sdp = await peer.answer(self.pc, offer, passthrough, add_transceivers)
        forwarder_cls = TrackForwarder if passthrough else TranscodingForwarder
        for transceiver in self.pc.getTransceivers():
            track = transceiver.receiver.track
            codec = aiortc_compat.negotiated_codec(transceiver)
            if track is None or codec is None:
                continue
            self.codecs[track.kind] = codec.mimeType
            forwarder = forwarder_cls(
                track,
                transceiver.receiver,
                on_ended=lambda: self._schedule_close("ended"),
                keyframe_interval=self.settings.keyframe_interval,
            )
            self.forwarders[track.kind] = forwarder
            forwarder.start()
        peer.watch_connection(self.pc, self._schedule_close)
        if passthrough:
            self._watchdog = asyncio.ensure_future(self._watch_media())
        return sdp

    async def _watch_media(self) -> None:
        """Remove the publication when its media stops, long before ICE would notice."""
        period = min(0.5, self.settings.media_timeout / 3)
        while not self.closed:
            await asyncio.sleep(period)
            now = time.monotonic()
            last = [f.last_frame_at for f in self.forwarders.values() if f.last_frame_at]
            if not last:
                if now - self.created_at > self.settings.connect_timeout:
                    self._schedule_close("no_media")
                    return
            elif now - max(last) > self.settings.media_timeout:
                self._schedule_close("media_timeout")
                return

    def _schedule_close(self, reason: str) -> None:
        if not self.closed:
            asyncio.ensure_future(self.participant.room.unpublish(self, reason))

    def request_keyframe(self) -> None:
        forwarder = self.forwarders.get("video")
        if forwarder is not None:
            forwarder.request_keyframe()

    async def close(self, reason: str = "closed") -> None:
        """Close the publication and every subscription to it. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        logger.info("publication %s closed: %s", self.id, reason)
        if self._watchdog is not None and self._watchdog is not asyncio.current_task():
            self._watchdog.cancel()
        for subscription in tuple(self.subscriptions):
            await subscription.close("publication_closed")
        for forwarder in self.forwarders.values():
            await forwarder.stop()
        await self.pc.close()
