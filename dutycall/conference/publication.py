"""A Publication: the tracks one participant sends in, over its own peer connection."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiortc import MediaStreamTrack, RTCPeerConnection

from . import aiortc_compat, ingress, peer
from .forwarding import Forwarder
from .lifecycle import CloseReason
from .sdp import Offer
from .settings import ConferenceSettings

if TYPE_CHECKING:
    from .participant import Participant
    from .subscription import Subscription

logger = logging.getLogger(__name__)

#: Called once when a publication ends by itself (its connection failed, its media stopped):
#: the room then closes it and tells everyone.
OnPublicationEnded = Callable[["Publication", CloseReason], None]


class Publication:
    """Media published by one participant; owns its peer connection and forwarders.

    It never removes itself: when it ends by itself it reports to ``on_ended`` (registered
    by its room), and the room closes it. Closing it closes every subscription to it.
    """

    def __init__(self, id: str, participant: Participant, label: str, settings: ConferenceSettings,
                 on_ended: OnPublicationEnded) -> None:
        self.id = id
        self.participant = participant
        self.label = label
        self.settings = settings
        self.pc = RTCPeerConnection(settings.rtc_configuration())
        self.forwarders: dict[str, Forwarder] = {}
        #: Negotiated MIME types by kind, e.g. {"video": "video/VP8", "audio": "audio/opus"}.
        self.codecs: dict[str, str] = {}
        self.subscriptions: set[Subscription] = set()
        self.closed = False
        self.close_reason: CloseReason | None = None
        self._on_ended: OnPublicationEnded | None = on_ended
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

    # -- queries (public) ----------------------------------------------------------------

    @property
    def video_codec(self) -> str | None:
        """The video's MIME type ("video/VP8", "video/H264"), None without video."""
        return self.codecs.get("video")

    def codec_name(self, kind: str) -> str | None:
        """The codec of ``kind`` without its type: "VP8", "H264", "opus"; None if absent."""
        mime = self.codecs.get(kind)
        return mime.split("/", 1)[-1] if mime else None

    def forwarder(self, kind: str) -> Forwarder | None:
        """The forwarder of ``kind`` (None if not published), for taps and keyframe waits."""
        return self.forwarders.get(kind)

    def last_frame_at(self, kind: str) -> float | None:
        """``time.monotonic()`` of the last ``kind`` frame received; None if none yet."""
        forwarder = self.forwarders.get(kind)
        return forwarder.last_frame_at if forwarder is not None else None

    def is_live(self, kind: str, within: float = 3.0) -> bool:
        """``kind`` media arrived in the last ``within`` seconds."""
        last = self.last_frame_at(kind)
        return not self.closed and last is not None and time.monotonic() - last <= within

    def tap(self, kind: str = "video") -> MediaStreamTrack | None:
        """One more subscriber track of ``kind`` (video starts at a keyframe, requested now);
        None if not published. The caller must ``stop()`` it. A tap keeps every frame however
        late (the archive must not lose media to a busy server)."""
        forwarder = self.forwarders.get(kind)
        return forwarder.subscribe(drop_stale=False) if forwarder is not None and not self.closed else None

    async def next_keyframe(self, timeout: float) -> bool:
        """Wait for the publisher's next video keyframe; False on timeout or without video."""
        forwarder = self.forwarders.get("video")
        return await forwarder.next_keyframe(timeout) if forwarder is not None else False

    def request_keyframe(self) -> None:
        forwarder = self.forwarders.get("video")
        if forwarder is not None:
            forwarder.request_keyframe()

    # -- lifetime ------------------------------------------------------------------------

    async def negotiate(self, offer: Offer, video_codec: str | None) -> str:
        """Answer the publisher's offer and start forwarding; raises SdpError on failure."""
        passthrough = self.settings.passthrough

        def add_transceivers() -> None:
            for section in offer.media:
                transceiver = self.pc.addTransceiver(section.kind, direction="recvonly")
                only = video_codec if section.kind == "video" else None
                transceiver.setCodecPreferences(peer.codec_preferences(section.kind, only))

        sdp = await peer.answer(self.pc, offer, passthrough, add_transceivers)
        make_forwarder = self.settings.make_forwarder()
        for transceiver in self.pc.getTransceivers():
            track = transceiver.receiver.track
            codec = aiortc_compat.negotiated_codec(transceiver)
            if track is None or codec is None:
                continue
            self.codecs[track.kind] = codec.mimeType
            forwarder = make_forwarder(
                track,
                transceiver.receiver,
                on_ended=lambda: self._ended(CloseReason.TRACK_ENDED),
                keyframe_interval=self.settings.keyframe_interval,
            )
            self.forwarders[track.kind] = forwarder
            forwarder.start()
        peer.watch_connection(self.pc, self._ended)
        if passthrough:
            # Decoded forwarding (the benchmark's baseline) only sees frames while someone
            # subscribes: its silence means nothing, so it gets no watchdog.
            self._watchdog = asyncio.ensure_future(self._watch_media())
        return sdp

    async def _watch_media(self) -> None:
        """Report the publication ended when its media stops, long before ICE would notice."""
        period = min(0.5, self.settings.media_timeout / 3)
        while not self.closed:
            await asyncio.sleep(period)
            now = time.monotonic()
            last = [f.last_frame_at for f in self.forwarders.values() if f.last_frame_at]
            if last:
                # Judge arrival, not processing: a server slowed by CPU contention reads its own
                # backlog late, while the publisher sends normally (ingress.py notes arrival).
                arrived = ingress.last_media_arrival(self.pc)
                if arrived is not None:
                    last.append(arrived)
            if not last:
                if now - self.created_at > self.settings.connect_timeout:
                    self._ended(CloseReason.NO_MEDIA)
                    return
            elif now - max(last) > self.settings.media_timeout:
                self._ended(CloseReason.MEDIA_TIMEOUT)
                return

    def _ended(self, reason: CloseReason) -> None:
        """Ended by itself: tell the room, once; it will close us."""
        callback, self._on_ended = self._on_ended, None
        if callback is not None and not self.closed:
            callback(self, reason)

    def attach(self, subscription: Subscription) -> None:
        """Count ``subscription`` among ours: closing us closes it."""
        self.subscriptions.add(subscription)

    def detach(self, subscription: Subscription) -> None:
        """``subscription`` closed: forget it."""
        self.subscriptions.discard(subscription)

    async def close(self, reason: CloseReason = CloseReason.CLOSED) -> None:
        """Close the publication and every subscription to it. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self._on_ended = None
        logger.info("publication %s closed: %s", self.id, reason)
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None and watchdog is not asyncio.current_task():
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
        # Children first: each subscription reports its end to whoever registered for it.
        for subscription in tuple(self.subscriptions):
            await subscription.publication_closed()
        self.subscriptions.clear()
        for forwarder in self.forwarders.values():
            await forwarder.stop()
        await self.pc.close()
