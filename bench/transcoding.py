"""The benchmark's baseline: stock aiortc ``MediaRelay`` forwarding (decode once, encode per subscriber).

Not part of the server: ``bench/fanout.py`` compares the SFU against it. Running this module
starts a dutycall server with the baseline registered as ``--forwarding transcode``:

    python -m bench.transcoding --forwarding transcode [the server's other flags]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from aiortc import MediaStreamTrack, RTCRtpReceiver
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from dutycall.conference.forwarding import register_forwarding

#: The ``--forwarding`` name of the baseline.
MODE = "transcode"


class _TapTrack(MediaStreamTrack):
    """Passes frames through, noting when the last one came (for liveness)."""

    def __init__(self, source: MediaStreamTrack, forwarder: TranscodingForwarder) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source
        self._forwarder = forwarder

    async def recv(self) -> Any:
        try:
            frame = await self._source.recv()
        except MediaStreamError:
            self._forwarder._ended()
            raise
        self._forwarder.frames_received += 1
        self._forwarder.last_frame_at = time.monotonic()
        return frame


class TranscodingForwarder:
    """Baseline only: stock ``MediaRelay``, decoding once and encoding per subscriber."""

    def __init__(
        self,
        track: MediaStreamTrack,
        receiver: RTCRtpReceiver | None,
        on_ended: Callable[[], None] | None = None,
        keyframe_interval: float = 0.25,
    ) -> None:
        self.kind = track.kind
        self.track = track
        self.receiver = receiver
        self._on_ended = on_ended
        self._relay = MediaRelay()
        self._tap = _TapTrack(track, self)
        self._subscribers: set[MediaStreamTrack] = set()
        self.frames_received = 0
        self.keyframes_received = 0
        self.keyframe_requests_sent = 0
        self.last_frame_at: float | None = None
        self.started_at = time.monotonic()
        self._started = False

    def start(self) -> None:
        self._started = True

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribe(self, drop_stale: bool = True) -> MediaStreamTrack:
        sub = self._relay.subscribe(self._tap, buffered=False)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: MediaStreamTrack) -> None:
        self._subscribers.discard(sub)

    def request_keyframe(self) -> None:
        """Each subscriber's own encoder makes keyframes; nothing to ask upstream."""

    def _ended(self) -> None:
        callback, self._on_ended = self._on_ended, None
        if callback is not None:
            callback()

    async def stop(self) -> None:
        self._on_ended = None
        for sub in tuple(self._subscribers):
            sub.stop()
        self._subscribers.clear()
        self._tap.stop()

    async def next_keyframe(self, timeout: float) -> bool:
        """Decoded frames carry no keyframe flag from the publisher: never known."""
        return False


def install() -> None:
    """Register the baseline as ``--forwarding transcode`` (receivers then decode: the server
    marks only ``passthrough`` connections for encoded forwarding)."""
    register_forwarding(MODE, TranscodingForwarder)


if __name__ == "__main__":
    from dutycall.server import main

    install()
    main(sys.argv[1:])
