"""Receive-side frame reassembly that adds no delay of its own.

aiortc's :class:`~aiortc.jitterbuffer.JitterBuffer` hands a video frame on only when the first
packet of the *next* frame arrives (a different RTP timestamp is its only "frame complete"
signal), and holds audio back by a prefetch of four packets. A decoding endpoint can afford
that; a forwarding server cannot: every hop would be one frame interval late (+33 ms at
30 fps, +200 ms for a console on the 5 fps standby profile) and audio 80 ms late.

:class:`MarkerJitterBuffer` releases a video frame as soon as it is complete: the packets from
the buffer's origin are contiguous in sequence, share one timestamp and the last carries the
RTP marker bit (RFC 3550 section 5.1; VP8 and H.264 payload formats set it on a frame's last
packet). A sequence gap still holds the frame back (for NACK) exactly as before, and a frame
whose marker packet is lost is still closed by the next frame's first packet. At most one
frame is released per packet, as the receiver expects; frames that queued behind a gap drain
with the following packets.

:class:`ImmediateAudioBuffer` hands on every audio packet at once (one Opus packet is one
frame): a late duplicate or a packet older than what was already handed on is dropped, the
subscriber's own jitter buffer does the rest.

Both are installed by :func:`dutycall.conference.aiortc_compat.mark_passthrough` on the
server's publisher-facing receivers (and on clients that forward encoded frames).
"""

from __future__ import annotations

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add


class MarkerJitterBuffer(JitterBuffer):
    """A video jitter buffer that releases each frame on its marker bit."""

    def __init__(self, capacity: int = 512) -> None:
        super().__init__(capacity=capacity, prefetch=0, is_video=True)

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        origin = self._origin
        if origin is None:
            return None
        packets: list[RtpPacket] = []
        timestamp: int | None = None
        complete = False
        for count in range(self._capacity):
            packet = self._packets[(origin + count) % self._capacity]
            if packet is None:  # a gap (or nothing yet): wait for it
                return None
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:  # the next frame began: this one ended
                complete = True
                break
            packets.append(packet)
            if packet.marker:
                complete = True
                break
        if not complete or timestamp is None:
            return None
        frame = JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)  # type: ignore[attr-defined]
        self.remove(len(packets))
        return frame


class ImmediateAudioBuffer(JitterBuffer):
    """An audio "jitter buffer" that hands each packet on as it arrives, in order."""

    def __init__(self) -> None:
        super().__init__(capacity=16, prefetch=0, is_video=False)
        self._last: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        last = self._last
        if last is not None:
            ahead = uint16_add(packet.sequence_number, -last)
            if ahead == 0 or ahead > 0x8000:  # a duplicate, or older than what went out
                return False, None
        self._last = packet.sequence_number
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)  # type: ignore[attr-defined]
