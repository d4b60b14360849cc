"""Attendance evidence: snapshots of a room's own stream, face presence and liveness.

Decoding only what it needs: when a room answers, a tap on the publication's forwarder
(one more subscriber, keyframe-gated, a keyframe requested at once) records a few seconds
of the room's stream, which is decoded once, in a worker process (a thread would hold the
GIL against the forwarding loop), and dropped. The first and last pictures give the
liveness check (a black or frozen picture fails), the last is kept as the snapshot, and
the grey thumbnails of every picture in between show a looped recording: the same moving
pictures again, in order, one period later. OpenCV's stock frontal-face Haar cascade looks
for a face (opencv-python-headless 4.x ships the cascades; 5.x does not).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.process
import dataclasses
import hashlib
import logging
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import av
import numpy as np

logger = logging.getLogger(__name__)



class Verdict(StrEnum):
    """What the evidence of an answer shows; the values are what the database and the wire hold."""

    VERIFIED = "verified"
    NO_FACE = "no_face"
    FROZEN = "frozen"
    LOOPED = "looped"
    BLACK = "black"
    NO_VIDEO = "no_video"
    #: The server stopped (crashed, killed, restarted) after the answer was recorded and before
    #: its evidence was: marked so at the next start instead of left blank. It is not taken again
    #: then, since a picture taken later would not show who was there when the room answered.
    LOST = "lost"


VERIFIED = Verdict.VERIFIED
NO_FACE = Verdict.NO_FACE
FROZEN = Verdict.FROZEN
LOOPED = Verdict.LOOPED
BLACK = Verdict.BLACK
NO_VIDEO = Verdict.NO_VIDEO
LOST = Verdict.LOST

#: Mean luma below this, with little variation, is a black picture.
BLACK_MEAN, BLACK_STD = 20.0, 8.0
#: Two snapshots whose 64x36 grey thumbnails differ by less than this (mean absolute
#: difference, 0-255) show no movement. Measured on VP8/H264 640x360: re-encoding the very
#: same picture as a new keyframe differs by 0.7-1.0; a head moving 2 px by ~4, 8 px by ~15.
#: A perfectly still person therefore fails too: the officer is expected to speak and move.
FROZEN_DIFF = 2.0
THUMBNAIL = (64, 36)
#: A loop: at some lag every thumbnail matches the one a lag earlier to within LOOP_DIFF
#: (re-encoding noise), although at a shorter lag the picture had moved away by more than
#: LOOP_MOTION. Slow real movement drifts further with every lag and never comes back.
LOOP_DIFF, LOOP_MOTION = 1.5, 4.0
#: Loops shorter than this are not looked for (nothing repeats faster in a real room).
LOOP_MIN_PERIOD = 0.3
DECODERS = {"VP8": "libvpx", "H264": "h264"}


@dataclass(frozen=True)
class Evidence:
    """The verdict on a room's picture, with the snapshot kept for the record."""

    verdict: Verdict
    faces: int = 0
    jpeg: bytes | None = None
    sha256: str | None = None
    width: int = 0
    height: int = 0

    @property
    def verified(self) -> bool:
        return self.verdict == VERIFIED


_cascade = None


def _face_detector():  # type: ignore[no-untyped-def]
    global _cascade
    if _cascade is None:
        import cv2

        _cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if _cascade.empty():  # pragma: no cover - a broken OpenCV install
            raise RuntimeError("OpenCV's frontal-face cascade could not be loaded")
    return _cascade


def count_faces(rgb: np.ndarray) -> int:
    import cv2

    grey = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    height = grey.shape[0]
    faces = _face_detector().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                              minSize=(max(24, height // 12), max(24, height // 12)))
    return len(faces)


def judge(first: np.ndarray | None, second: np.ndarray | None) -> Evidence:
    """The verdict from two RGB snapshots taken a few seconds apart (pure; CPU only)."""
    import cv2

    if first is None or second is None:
        return Evidence(NO_VIDEO)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(second, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    jpeg = encoded.tobytes() if ok else None
    record = {"jpeg": jpeg, "sha256": hashlib.sha256(jpeg).hexdigest() if jpeg else None,
              "width": second.shape[1], "height": second.shape[0]}
    grey_a = cv2.cvtColor(first, cv2.COLOR_RGB2GRAY)
    grey_b = cv2.cvtColor(second, cv2.COLOR_RGB2GRAY)
    if grey_b.mean() < BLACK_MEAN and grey_b.std() < BLACK_STD:
        return Evidence(BLACK, **record)
    # Nobody there says more than "nothing moved": look for a face first.
    faces = count_faces(second)
    if not faces:
        return Evidence(NO_FACE, **record)
    thumb_a = cv2.resize(grey_a, THUMBNAIL, interpolation=cv2.INTER_AREA).astype(np.float32)
    thumb_b = cv2.resize(grey_b, THUMBNAIL, interpolation=cv2.INTER_AREA).astype(np.float32)
    if float(np.abs(thumb_a - thumb_b).mean()) < FROZEN_DIFF:
        return Evidence(FROZEN, faces=faces, **record)
    return Evidence(VERIFIED, faces=faces, **record)


def find_loop(thumbs: list[np.ndarray], fps: float) -> float | None:
    """The period in seconds of a looped picture, or None (pure; CPU only).

    ``thumbs`` are grey thumbnails of consecutive pictures. Only loops up to half the
    recording's length can be seen: each must repeat at least once.
    """
    n = len(thumbs)
    if n < 4:
        return None
    stack = np.stack([t.astype(np.float32) for t in thumbs])
    moved = 0.0
    for lag in range(1, n // 2 + 1):
        diff = float(np.abs(stack[lag:] - stack[:-lag]).mean())
        if diff < LOOP_DIFF and moved > LOOP_MOTION and lag / fps >= LOOP_MIN_PERIOD:
            return lag / fps
        moved = max(moved, diff)
    return None


def thumbnail(grey: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(grey, THUMBNAIL, interpolation=cv2.INTER_AREA)


def judge_recording(packets: list[av.Packet], codec_name: str, fps: float = 30.0) -> Evidence:
    """Decode a recorded stretch (starting at a keyframe) and judge it (pure; CPU only)."""
    decoder: Any = av.CodecContext.create(DECODERS[codec_name.upper()], "r")
    first = last = None
    thumbs: list[np.ndarray] = []
    try:
        for packet in [*packets, None]:
            for frame in decoder.decode(packet):
                last = frame
                if first is None:
                    first = frame.to_ndarray(format="rgb24")
                thumbs.append(thumbnail(frame.to_ndarray(format="gray")))
    except av.FFmpegError as exc:
        logger.warning("evidence decode failed after %d pictures: %s", len(thumbs), exc)
    if first is None or last is None:
        return Evidence(NO_VIDEO)
    verdict = judge(first, last.to_ndarray(format="rgb24"))
    if verdict.verified:
        period = find_loop(thumbs, fps)
        if period is not None:
            logger.info("looped picture: period %.2f s", period)
            return dataclasses.replace(verdict, verdict=LOOPED)
    return verdict


async def record(forwarder, seconds: float, timeout: float = 5.0) -> list[av.Packet]:  # type: ignore[no-untyped-def]
    """``seconds`` of a publication's video from its next keyframe; fewer if it stops."""
    tap = forwarder.subscribe()  # keyframe-gated, and asks the publisher for one now
    packets: list[av.Packet] = []
    try:
        packets.append(await asyncio.wait_for(tap.recv(), timeout))
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            try:
                packets.append(await asyncio.wait_for(tap.recv(), min(left, 1.0)))
            except TimeoutError:
                break  # time is up, or the stream stalled for a second
    except Exception:  # noqa: BLE001 - timeout, or the publication went away
        pass
    finally:
        tap.stop()
    return packets


_pool: concurrent.futures.ProcessPoolExecutor | None = None


def _leave_with_parent(parent: int) -> None:
    """In the worker: exit when the server is gone, even killed with SIGKILL (which would
    otherwise leave this process behind, waiting for work forever)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="evidence-parent-watch", daemon=True).start()


def _judge_payloads(payloads: list[bytes], codec_name: str, fps: float) -> Evidence:
    return judge_recording([av.Packet(p) for p in payloads], codec_name, fps)


async def gather(forwarder, codec_name: str, gap: float = 3.0, timeout: float = 5.0) -> Evidence:  # type: ignore[no-untyped-def]
    """Record ``gap`` seconds of the room's stream and judge them in another process.

    Decoding a few seconds of video takes a fraction of a CPU second; in a thread it would
    hold the GIL against the event loop that forwards everyone's media, so it runs in a
    worker process of its own (started on first use, one for the whole server).
    """
    global _pool
    packets = await record(forwarder, gap, timeout)
    if not packets:
        return Evidence(NO_VIDEO)
    payloads, fps = [bytes(p) for p in packets], frame_rate(packets, gap)
    loop = asyncio.get_running_loop()
    for _ in range(2):
        if _pool is None:
            _pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_leave_with_parent, initargs=(os.getpid(),))
        try:
            return await loop.run_in_executor(_pool, _judge_payloads, payloads, codec_name, fps)
        except concurrent.futures.process.BrokenProcessPool:
            logger.warning("the evidence worker process died; starting another")
            _pool = None
    return await asyncio.to_thread(_judge_payloads, payloads, codec_name, fps)


def shutdown_pool() -> None:
    """Stop the worker process (at server stop; the next ``gather`` would start another)."""
    global _pool
    pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def frame_rate(packets: list[av.Packet], seconds: float) -> float:
    """Pictures per second of a recording, from its timestamps when it has them."""
    first, last = packets[0], packets[-1]
    if len(packets) > 1 and first.pts is not None and last.pts is not None and first.time_base:
        span = float((last.pts - first.pts) * first.time_base)
        if span > 0:
            return (len(packets) - 1) / span
    return len(packets) / seconds if seconds > 0 else 30.0
