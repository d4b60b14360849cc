"""Synthetic encoded video for tests, benchmarks and smoke checks of a deployment.

The tracks here yield ``av.Packet``s that aiortc's sender packetizes as they
are, so their keyframes come exactly when asked for (the start, and each
PLI/FIR routed to :meth:`request_keyframe`), unlike aiortc's own encoder which
also makes one whenever its bitrate estimate moves.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

VIDEO_CLOCK = 90000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)


def make_encoder(codec: str, width: int, height: int, fps: int, bitrate: int,
                 max_intra_pct: int | None = None) -> Any:
    """An encoder that makes keyframes only when told to.

    ``max_intra_pct`` caps a VP8 keyframe at that percentage of one frame's share of the bitrate
    (libvpx's ``rc_max_intra_bitrate_pct``; ``None``: uncapped). A browser's WebRTC VP8 encoder
    caps it so (about 900 at 30 fps: half of a 600 ms buffer), which keeps a keyframe to a few
    frames' worth of packets; uncapped, a noisy 640x360 keyframe is ~100 KB.
    """
    name = {"vp8": "libvpx", "h264": "libx264"}[codec.lower()]
    ctx: Any = av.CodecContext.create(name, "w")
    ctx.width = width
    ctx.height = height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = fractions.Fraction(1, fps)
    ctx.framerate = fractions.Fraction(fps, 1)
    ctx.bit_rate = bitrate
    ctx.gop_size = 100000
    if name == "libvpx":
        ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0",
                       "kf_max_dist": "100000", "auto-alt-ref": "0"}
        if max_intra_pct is not None:
            ctx.options = {**ctx.options, "max-intra-rate": str(max_intra_pct)}
    else:
        ctx.profile = "Baseline"
        ctx.options = {"tune": "zerolatency", "preset": "ultrafast", "keyint": "100000",
                       "scenecut": "0", "repeat-headers": "1"}
    ctx.open()
    return ctx


def solid_frame(rgb: tuple[int, int, int], width: int, height: int) -> av.VideoFrame:
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:, :] = rgb
    return av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")


def noise_frames(count: int, width: int, height: int, seed: int = 1) -> list[av.VideoFrame]:
    """Moving, noisy pictures: they cost a realistic bitrate to encode."""
    rng = np.random.default_rng(seed)
    base = np.zeros((height, width, 3), dtype=np.uint8)
    ys, xs = np.mgrid[0:height, 0:width]
    frames = []
    for i in range(count):
        base[..., 0] = (xs + 4 * i) % 256
        base[..., 1] = (ys + 2 * i) % 256
        base[..., 2] = 128
        noisy = base + rng.integers(0, 24, size=base.shape, dtype=np.uint8)
        frames.append(av.VideoFrame.from_ndarray(noisy, format="rgb24").reformat(format="yuv420p"))
    return frames


class _PacedTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, fps: int) -> None:
        super().__init__()
        self.fps = fps
        self._start: float | None = None
        self._index = 0
        self._base_index = 0
        self._epoch: float | None = None
        self._force_keyframe = True
        self.keyframes_sent = 0
        self.frames_sent = 0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._sleeper: asyncio.Future[None] | None = None

    def pause(self) -> None:
        """Stop producing frames (a camera that froze); the track stays live."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()
        self._start = None

    def request_keyframe(self) -> None:
        self._force_keyframe = True

    def set_rate(self, fps: int) -> None:
        """Change the frame rate now, as a camera's encoder does: the frame due at the
        old rate is not waited for; the next comes at the new rate's next slot."""
        self.fps = fps
        self._start = None
        if self._sleeper is not None and not self._sleeper.done():
            self._sleeper.set_result(None)

    async def _sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        self._sleeper = sleeper = loop.create_future()
        timer = loop.call_later(seconds, lambda: None if sleeper.done() else sleeper.set_result(None))
        try:
            await sleeper
        finally:
            timer.cancel()
            self._sleeper = None

    async def _pace(self) -> int:
        """Wait for the next frame slot; return its RTP timestamp (90 kHz, wall clock)."""
        if self.readyState != "live":
            raise MediaStreamError
        if not self._flowing.is_set():
            await self._flowing.wait()
        while True:
            now = time.monotonic()
            if self._epoch is None:
                self._epoch = now
            if self._start is None:
                # A (new) rate starts on the camera's own clock: the next slot of its grid since the
                # first frame, never at once. A real camera changing rate sends no early frame, and an
                # early frame at each change would let a subscriber count more than the rate.
                slot = 1 / self.fps
                self._start = self._epoch + math.ceil((now - self._epoch) / slot - 1e-9) * slot
                self._base_index = self._index
            wait = self._start + (self._index - self._base_index) / self.fps - now
            if wait <= 0:
                break
            await self._sleep(wait)
            if self._start is not None:
                break  # slept until the slot (a rate change wakes the sleep and clears _start)
        self._index += 1
        return int((time.monotonic() - self._epoch) * VIDEO_CLOCK)


class EncodedColorTrack(_PacedTrack):
    """A solid colour, encoded live (VP8 or H264); keyframes only on request."""

    def __init__(self, rgb: tuple[int, int, int], codec: str = "vp8", width: int = 320,
                 height: int = 240, fps: int = 30, bitrate: int = 300_000) -> None:
        super().__init__(fps)
        self.rgb = rgb
        self._encoder = make_encoder(codec, width, height, fps, bitrate)
        self._frame = solid_frame(rgb, width, height)
        self._frame_no = 0
        self._pending: list[av.Packet] = []

    def _next_picture(self) -> av.VideoFrame:
        return self._frame

    async def recv(self) -> av.Packet:
        while True:
            pts = await self._pace()
            frame = self._next_picture()
            frame.pts = self._frame_no
            frame.time_base = self._encoder.time_base
            self._frame_no += 1
            if self._force_keyframe:
                frame.pict_type = av.video.frame.PictureType.I
                self._force_keyframe = False
            else:
                frame.pict_type = av.video.frame.PictureType.NONE
            packets = self._encoder.encode(frame)
            if not packets:
                continue
            data = b"".join(bytes(p) for p in packets)
            packet = av.Packet(data)
            packet.pts = pts
            packet.time_base = VIDEO_TIME_BASE
            packet.is_keyframe = any(p.is_keyframe for p in packets)
            self.frames_sent += 1
            self.keyframes_sent += int(packet.is_keyframe)
            return packet


class EncodedImageTrack(EncodedColorTrack):
    """Pictures (RGB arrays of one size) shown in turn, ``hold`` frames each; keyframes on request."""

    def __init__(self, images: list[np.ndarray], codec: str = "vp8", fps: int = 30, hold: int = 15,
                 bitrate: int = 600_000) -> None:
        height, width = images[0].shape[:2]
        super().__init__((0, 0, 0), codec=codec, width=width, height=height, fps=fps, bitrate=bitrate)
        self._pictures = [av.VideoFrame.from_ndarray(np.ascontiguousarray(i), format="rgb24").reformat(format="yuv420p")
                          for i in images]
        self._hold = hold

    def _next_picture(self) -> av.VideoFrame:
        return self._pictures[(self._frame_no // self._hold) % len(self._pictures)]


class PreEncodedTrack(_PacedTrack):
    """Loops packets encoded once; a keyframe request restarts the loop at its keyframe.

    Costs the sending process almost nothing, so many can run on one machine.
    """

    def __init__(self, packets: list[bytes], fps: int = 30) -> None:
        super().__init__(fps)
        self._packets = packets
        self._pos = 0

    @classmethod
    def encode(cls, codec: str = "vp8", width: int = 640, height: int = 360, fps: int = 30,
               bitrate: int = 700_000, seconds: float = 4.0, max_intra_pct: int | None = None) -> list[bytes]:
        encoder = make_encoder(codec, width, height, fps, bitrate, max_intra_pct)
        out: list[bytes] = []
        for i, frame in enumerate(noise_frames(int(fps * seconds), width, height)):
            frame.pts = i
            frame.time_base = encoder.time_base
            frame.pict_type = av.video.frame.PictureType.I if i == 0 else av.video.frame.PictureType.NONE
            data = b"".join(bytes(p) for p in encoder.encode(frame))
            if data:
                out.append(data)
        return out

    async def recv(self) -> av.Packet:
        pts = await self._pace()
        if self._force_keyframe:
            self._force_keyframe = False
            self._pos = 0
        data = self._packets[self._pos]
        self._pos = (self._pos + 1) % len(self._packets)
        packet = av.Packet(data)
        packet.pts = pts
        packet.time_base = VIDEO_TIME_BASE
        packet.is_keyframe = self._pos == 1
        self.frames_sent += 1
        self.keyframes_sent += int(packet.is_keyframe)
        return packet
