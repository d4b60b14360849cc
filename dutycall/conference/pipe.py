"""A publication piped to another process: encoded frames over a stream socket.

The control process keeps each publisher's peer connection; a media worker (``worker.py``)
holds subscribers' connections. Between them runs one stream connection per worker (a Unix
socket here; the same bytes run over TCP between machines), carrying two kinds of message,
each ``length (u32) | type (1 byte) | body``:

- ``J``: a JSON control message (requests, replies, events: ``workers.py`` and ``worker.py``);
- ``M``: one encoded frame of a piped track: ``pipe id (u32) | kind (u8: 0 video, 1 audio) |
  flags (u8: bit 0 keyframe) | sequence (u32, per pipe and kind) | RTP timestamp (u32) |
  clock rate (u32)`` and then the frame's bytes exactly as the publisher's receiver reassembled
  them. Nothing is decoded or re-encoded on either side.

The sending side (:class:`PipeSender`) is one more subscriber of the publication's forwarders
that never drops a frame for lateness (the worker's own subscribers judge that, from the RTP
timestamps, on their clock); it writes each frame the moment the forwarder pushes it, with no
task of its own. If the socket backs up beyond :data:`MAX_BUFFERED` the sender skips video up
to the next keyframe. The receiving side (:class:`PipedForwarder`) is a :class:`TrackForwarder`
fed by the socket instead of a receiver; a gap in the sequence makes its video subscribers
wait for a keyframe, and its keyframe requests travel back up the pipe (``keyframe``).
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av

from .forwarding import ForwardedTrack, Forwarder, TrackForwarder

HEADER = struct.Struct("!IB")
MEDIA = struct.Struct("!IBBIII")
KINDS = ("video", "audio")
KIND_CODE = {"video": 0, "audio": 1}
#: Bytes queued on a pipe's socket beyond which video waits for the next keyframe.
MAX_BUFFERED = 8 * 1024 * 1024
#: The largest message accepted (a 4K keyframe is well under this).
MAX_MESSAGE = 16 * 1024 * 1024


def json_message(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return HEADER.pack(len(body) + 1, ord("J")) + body


def media_message(pipe_id: int, kind: str, packet: av.Packet, sequence: int) -> bytes:
    payload = bytes(packet)
    rate = packet.time_base.denominator if packet.time_base else 90000
    head = MEDIA.pack(pipe_id, KIND_CODE[kind], 1 if packet.is_keyframe else 0, sequence & 0xFFFFFFFF,
                      (packet.pts or 0) & 0xFFFFFFFF, rate)
    return HEADER.pack(len(head) + len(payload) + 1, ord("M")) + head + payload


async def read_message(reader: asyncio.StreamReader) -> tuple[str, bytes]:
    """The next message: its type ("J" or "M") and body. IncompleteReadError at the end."""
    length, kind = HEADER.unpack(await reader.readexactly(HEADER.size))
    if not 1 <= length <= MAX_MESSAGE:
        raise ValueError(f"pipe message of {length} bytes")
    return chr(kind), await reader.readexactly(length - 1)


def parse_media(body: bytes) -> tuple[int, str, av.Packet, int]:
    """An ``M`` body as (pipe id, kind, packet, sequence)."""
    pipe_id, kind, flags, sequence, pts, rate = MEDIA.unpack_from(body)
    packet = av.Packet(body[MEDIA.size:])
    packet.pts = pts
    packet.time_base = Fraction(1, rate or 90000)
    packet.is_keyframe = bool(flags & 1)
    return pipe_id, KINDS[kind], packet, sequence


class PipeSender:
    """Sends one publication's frames to one worker for as long as it has subscribers there."""

    def __init__(self, pipe_id: int, forwarders: dict[str, Forwarder],
                 write: Callable[[bytes], None], buffered: Callable[[], int]) -> None:
        self.id = pipe_id
        self._write = write
        self._buffered = buffered
        self._forwarders = forwarders
        self._taps: dict[str, ForwardedTrack] = {}
        self._sequence = {kind: 0 for kind in forwarders}
        self._skipping = False
        self.frames_sent = 0
        self.frames_skipped = 0
        for kind, forwarder in forwarders.items():
            tap = forwarder.subscribe(drop_stale=False)
            if isinstance(tap, ForwardedTrack):
                tap.on_ready = lambda kind=kind: self._drain(kind)
                self._taps[kind] = tap

    def _drain(self, kind: str) -> None:
        tap = self._taps.get(kind)
        if tap is None:
            return
        while (packet := tap.take()) is not None:
            if kind == "video":
                if self._skipping and not packet.is_keyframe:
                    self.frames_skipped += 1
                    continue
                self._skipping = self._buffered() > MAX_BUFFERED
                if self._skipping:
                    self.frames_skipped += 1
                    self._sequence[kind] += 1  # the worker sees the gap
                    continue
            self._sequence[kind] += 1
            self.frames_sent += 1
            self._write(media_message(self.id, kind, packet, self._sequence[kind]))

    def request_keyframe(self) -> None:
        forwarder = self._forwarders.get("video")
        if forwarder is not None:
            forwarder.request_keyframe()

    def close(self) -> None:
        for tap in self._taps.values():
            tap.on_ready = None
            tap.stop()
        self._taps.clear()


class PipedForwarder(TrackForwarder):
    """A worker's forwarder of a piped track: fed by the pipe, asks for keyframes up it."""

    def __init__(self, kind: str, ask_keyframe: Callable[[], None]) -> None:
        super().__init__(_PipeSource(kind), None)  # type: ignore[arg-type]
        self._ask = ask_keyframe
        self._open = True
        self._sequence: int | None = None

    def start(self) -> None:
        """Nothing to read: the pipe calls :meth:`feed`."""

    def feed(self, packet: av.Packet, sequence: int) -> None:
        if self._sequence is not None and sequence != (self._sequence + 1) & 0xFFFFFFFF:
            self.resync()
        self._sequence = sequence
        self.deliver(packet)

    def _can_ask(self) -> bool:
        return self._open

    def _ask_publisher(self) -> None:
        self._ask()

    async def stop(self) -> None:
        self._open = False
        await super().stop()


class _PipeSource:
    """Stands in for the remote track a :class:`TrackForwarder` would read."""

    def __init__(self, kind: str) -> None:
        self.kind = kind


class PipedPublication:
    """The worker's view of a piped publication: what :class:`Subscription` reads of one."""

    closed = False

    def __init__(self, pipe_id: int, publication_id: str, codecs: dict[str, str],
                 ask_keyframe: Callable[[], None]) -> None:
        self.pipe_id = pipe_id
        self.id = publication_id
        self.codecs = codecs
        self.forwarders: dict[str, TrackForwarder] = {kind: PipedForwarder(kind, ask_keyframe) for kind in codecs}

    @property
    def kinds(self) -> list[str]:
        return list(self.forwarders)

    def codec_name(self, kind: str) -> str | None:
        return self.codecs.get(kind)

    def feed(self, kind: str, packet: av.Packet, sequence: int) -> None:
        forwarder = self.forwarders.get(kind)
        if isinstance(forwarder, PipedForwarder):
            forwarder.feed(packet, sequence)

    async def close(self) -> None:
        self.closed = True
        for forwarder in self.forwarders.values():
            await forwarder.stop()
