"""The wall's thumbnails (多画面): one small, recent JPEG per duty room that an open wall looks at.

A wall of 150-200 rooms cannot be 200 live streams into one browser. Instead, for each room
that some open wall page has on screen (the page says which, :meth:`Thumbnails.look`, and
renews it while it stays open), a loop here, every ``interval`` seconds (3 by default):

- finds the room's console publication wherever it is (standby or a roll-call's room) by its
  conference tag, through the conference's public queries;
- taps its video (``Publication.tap``: one more subscriber, keyframe-gated, which asks the
  publisher for a keyframe at once), keeps the first frame (that keyframe) and stops the tap:
  nothing else is kept or forwarded;
- hands the keyframe to a worker process (``ProcessPoolExecutor``, spawned on first use, like
  the evidence worker: decoding in a thread would hold the GIL against the event loop that
  forwards everyone's media), batched with the others due at the same time, which decodes it,
  scales it to at most 320x180 and encodes a small JPEG (OpenCV);
- keeps the latest JPEG per room with the wall-clock time its keyframe arrived.

Rooms nobody looks at any more (every lease for them expired, ``lease`` seconds without a
renewal, or the pages moved on) stop being tapped at once. Scope is the caller's business
(``web/wall.py``: rooms in the viewer's scope only).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import av
import cv2
import numpy as np

from ..conference import Conference
from ..rollcall.presence import console_tag
from .errors import TooMany
from .evidence import _leave_with_parent

logger = logging.getLogger(__name__)

#: Seconds between two thumbnails of one room (each picture is at most this plus the decode old;
#: a tile must never show one older than 5 s, and a busy publisher's keyframe can take a second).
INTERVAL = 3.0
#: How long a wall page's "I am looking at these rooms" holds without a renewal.
LEASE = 10.0
#: How long to wait for a room's keyframe after asking for it.
KEYFRAME_TIMEOUT = 1.0
#: Seconds before a room whose keyframe did not come is asked again (and the least between two asks).
RETRY = 0.25
WIDTH, HEIGHT = 320, 180
JPEG_QUALITY = 70
#: How long keyframes wait to be sent to the worker together.
BATCH_WAIT = 0.15
#: The most rooms one wall may look at (the page shows at most 36 at once; a bench 200).
MAX_ROOMS = 200
#: Walls (pages looking) at once: per account, and on the server (config ``wall_viewers_*``).
MAX_VIEWERS_PER_ACCOUNT = 2
MAX_VIEWERS = 50

#: FFmpeg's decoder for each codec a publication may carry (by its name, any case).
_CODECS = {"vp8": "vp8", "h264": "h264", "vp9": "vp9"}


@dataclass(frozen=True)
class Thumb:
    """A room's latest picture: JPEG bytes and the wall-clock time its keyframe arrived."""

    jpeg: bytes
    taken_at: float


# -- in the worker process ----------------------------------------------------------------------


def thumbnail(payload: bytes, codec: str, width: int = WIDTH, height: int = HEIGHT) -> bytes | None:
    """Decode one keyframe and encode it as a JPEG of at most ``width`` x ``height`` (its aspect
    kept); None if it does not decode. Pure CPU: run it in the worker."""
    try:
        context: Any = av.CodecContext.create(codec, "r")
        # One keyframe, once: no decoder threads to start and stop for it (FFmpeg's default
        # starts one per core), and no loop filter (a thumbnail does not show the difference).
        context.thread_count = 1
        context.options = {"skip_loop_filter": "all"}
        frames = list(context.decode(av.Packet(payload)))
        if not frames:
            frames = list(context.decode(None))
    except (av.error.FFmpegError, ValueError):
        return None
    if not frames:
        return None
    frame = frames[-1]
    scale = min(width / frame.width, height / frame.height, 1.0)
    w, h = max(2, int(frame.width * scale) // 2 * 2), max(2, int(frame.height * scale) // 2 * 2)
    image: np.ndarray = frame.reformat(width=w, height=h, format="bgr24").to_ndarray()
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return bytes(jpeg) if ok else None


def _thumbnails(batch: list[tuple[bytes, str]]) -> list[bytes | None]:
    return [thumbnail(payload, codec) for payload, codec in batch]


# -- on the event loop ----------------------------------------------------------------------------


class Thumbnails:
    """The thumbnails of the rooms open walls look at; one per server."""

    def __init__(self, conference: Conference, interval: float = INTERVAL, lease: float = LEASE,
                 max_per_account: int = MAX_VIEWERS_PER_ACCOUNT, max_viewers: int = MAX_VIEWERS) -> None:
        self.conference = conference
        self.interval = interval
        self.lease = lease
        self.max_per_account, self.max_viewers = max_per_account, max_viewers
        self._viewers: dict[str, tuple[frozenset[int], float]] = {}  # viewer -> rooms, lease end (monotonic)
        self._owners: dict[str, int | None] = {}  # viewer -> the account whose page it is
        self._loops: dict[int, asyncio.Task[None]] = {}
        self._thumbs: dict[int, Thumb] = {}
        self._queue: list[tuple[bytes, str, asyncio.Future[bytes | None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._closed = False
        #: Counters for /metrics-style checks and the benchmark: taps made, keyframes decoded.
        self.taps = 0
        self.decoded = 0

    # -- who looks at what -----------------------------------------------------------------

    def look(self, viewer: str, rooms: Iterable[int], account: int | None = None) -> None:
        """``viewer`` (one open wall page, of ``account``) has ``rooms`` on screen now, for the
        next ``lease`` seconds; an empty set stops it looking. A new wall beyond
        ``max_per_account`` of one account, or ``max_viewers`` in all, is refused (TooMany, 429)."""
        if self._closed:
            return
        wanted = frozenset(rooms)
        if wanted:
            now = time.monotonic()
            held = self._viewers.get(viewer)
            if held is None or held[1] <= now:  # a wall not looking until now
                live = [v for v, (_, until) in self._viewers.items() if until > now]
                if account is not None and sum(self._owners.get(v) == account for v in live) >= self.max_per_account:
                    raise TooMany("wall.too_many_walls", max=self.max_per_account)
                if len(live) >= self.max_viewers:
                    raise TooMany("wall.server_busy", max=self.max_viewers)
            self._viewers[viewer] = (wanted, now + self.lease)
            self._owners[viewer] = account
        else:
            self._viewers.pop(viewer, None)
            self._owners.pop(viewer, None)
        self._reconcile()
        if self._viewers and (self._sweeper is None or self._sweeper.done()):
            self._sweeper = asyncio.ensure_future(self._sweep())

    def watched(self) -> set[int]:
        """The rooms tapped now."""
        return set(self._loops)

    def thumb(self, room_id: int) -> Thumb | None:
        """The room's latest thumbnail, if any has been taken."""
        return self._thumbs.get(room_id)

    def _reconcile(self) -> None:
        now = time.monotonic()
        for viewer, (_, until) in list(self._viewers.items()):
            if until <= now:
                del self._viewers[viewer]
                self._owners.pop(viewer, None)
        wanted: set[int] = set()
        for rooms, _ in self._viewers.values():
            wanted |= rooms
        for room_id in list(self._loops):
            if room_id not in wanted:
                self._loops.pop(room_id).cancel()
        for room_id in wanted - set(self._loops):
            self._loops[room_id] = asyncio.ensure_future(self._room(room_id))

    async def _sweep(self) -> None:
        """While anyone looks: drop expired leases (a page closed without saying so)."""
        while self._viewers:
            await asyncio.sleep(1.0)
            self._reconcile()

    # -- one room ----------------------------------------------------------------------------

    async def _room(self, room_id: int) -> None:
        loop = asyncio.get_running_loop()
        # A new wall wants its pictures soon, but 200 rooms must not all ask at the same instant.
        await asyncio.sleep(random.uniform(0.0, min(1.0, self.interval)))
        while True:
            began = loop.time()
            missed = False
            try:
                missed = await self._snap(room_id) is False
            except asyncio.CancelledError:
                raise
            except Exception:  # one room's trouble must not end its loop
                logger.exception("wall thumbnail of duty room %s failed", room_id)
            # A keyframe that did not come in time (a busy publisher or server) is asked for
            # again soon: waiting a whole interval more would leave the tile twice as old.
            await asyncio.sleep(RETRY if missed else max(RETRY, self.interval - (loop.time() - began)))

    async def _snap(self, room_id: int) -> bool | None:
        """Take the room's picture: True when taken, False when its keyframe or its decoding
        failed, None when there is nothing to take (no console publishing video)."""
        publication = self.conference.publication_of(console_tag(room_id))
        if publication is None:
            return None
        codec = _CODECS.get((publication.codec_name("video") or "").lower())
        if codec is None:
            return None
        tap = publication.tap("video")  # keyframe-gated; asks the publisher for a keyframe now
        if tap is None:
            return None
        self.taps += 1
        try:
            frame = await asyncio.wait_for(tap.recv(), KEYFRAME_TIMEOUT)
        except Exception:  # noqa: BLE001 - no keyframe in time, or the publication went away
            return False
        finally:
            tap.stop()
        if not isinstance(frame, av.Packet):
            return None  # not a passthrough publication (only in-process test peers decode)
        taken_at = time.time()
        jpeg = await self._decode(bytes(frame), codec)
        if jpeg is None:
            return False
        self.decoded += 1
        self._thumbs[room_id] = Thumb(jpeg, taken_at)
        return True

    # -- the worker ---------------------------------------------------------------------------

    def _decode(self, payload: bytes, codec: str) -> asyncio.Future[bytes | None]:
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._queue.append((payload, codec, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        return future

    async def _flush(self) -> None:
        """Send what is due to the worker in one batch (one round trip for many rooms)."""
        loop = asyncio.get_running_loop()
        while self._queue:
            # Let the keyframes asked for together arrive together: fewer, larger batches (each
            # round trip to the worker costs this process too); a picture is this much older.
            await asyncio.sleep(BATCH_WAIT)
            batch, self._queue = self._queue, []
            try:
                results = await self._in_worker(loop, [(payload, codec) for payload, codec, _ in batch])
            except Exception:  # noqa: BLE001 - the worker failed twice: these rooms wait for the next round
                logger.exception("wall thumbnails: the worker failed")
                results = [None] * len(batch)
            for (_, _, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)

    async def _in_worker(self, loop: asyncio.AbstractEventLoop, batch: list[tuple[bytes, str]]) -> list[bytes | None]:
        for _ in range(2):
            if self._pool is None:
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_leave_with_parent, initargs=(os.getpid(),))
            try:
                return await loop.run_in_executor(self._pool, _thumbnails, batch)
            except concurrent.futures.process.BrokenProcessPool:
                logger.warning("the wall thumbnail worker process died; starting another")
                self._pool = None
        raise RuntimeError("the wall thumbnail worker keeps dying")

    async def close(self) -> None:
        """Stop every loop and the worker (at server stop)."""
        self._closed = True
        self._viewers.clear()
        self._owners.clear()
        tasks = [*self._loops.values(), *(t for t in (self._sweeper, self._flusher) if t is not None)]
        self._loops.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, _, future in self._queue:
            if not future.done():
                future.cancel()
        self._queue.clear()
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(None, lambda: pool.shutdown(wait=True,
                                                                                         cancel_futures=True))
