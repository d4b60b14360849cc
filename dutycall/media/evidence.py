"""Attendance evidence: snapshots of a room's own stream, face presence and liveness.

Decoding only what it needs: a snapshot taps the publication's forwarder like one more
subscriber, which starts at a keyframe (one is requested at once), decodes that single
keyframe and leaves. Two snapshots a few seconds apart give the liveness check: a
black or frozen picture fails. OpenCV's stock frontal-face Haar cascade looks for a face
(opencv-python-headless 4.x ships the cascades; 5.x does not).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass

import av
import numpy as np

logger = logging.getLogger(__name__)

VERIFIED = "verified"
NO_FACE = "no_face"
FROZEN = "frozen"
BLACK = "black"
NO_VIDEO = "no_video"

#: Mean luma below this, with little variation, is a black picture.
BLACK_MEAN, BLACK_STD = 20.0, 8.0
#: Two snapshots whose 64x36 grey thumbnails differ by less than this (mean absolute
#: difference, 0-255) show no movement. Measured on VP8/H264 640x360: re-encoding the very
#: same picture as a new keyframe differs by 0.7-1.0; a head moving 2 px by ~4, 8 px by ~15.
#: A perfectly still person therefore fails too: the officer is expected to speak and move.
FROZEN_DIFF = 2.0
THUMBNAIL = (64, 36)
DECODERS = {"VP8": "libvpx", "H264": "h264"}


@dataclass(frozen=True)
class Evidence:
    """The verdict on a room's picture, with the snapshot kept for the record."""

    verdict: str
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


def decode_keyframe(packet: av.Packet, codec_name: str) -> np.ndarray | None:
    """Decode one keyframe packet into an RGB array (a fresh decoder: nothing else is decoded)."""
    decoder = av.CodecContext.create(DECODERS[codec_name.upper()], "r")
    try:
        frames = list(decoder.decode(packet)) + list(decoder.decode(None))
    except av.FFmpegError as exc:
        logger.warning("snapshot decode failed: %s", exc)
        return None
    return frames[0].to_ndarray(format="rgb24") if frames else None


async def snapshot(forwarder, codec_name: str, timeout: float = 5.0) -> np.ndarray | None:  # type: ignore[no-untyped-def]
    """The next keyframe of a publication's video, decoded; None if none comes in time."""
    tap = forwarder.subscribe()  # keyframe-gated, and asks the publisher for one now
    try:
        packet = await asyncio.wait_for(tap.recv(), timeout)
    except (asyncio.TimeoutError, Exception):
        return None
    finally:
        tap.stop()
    return await asyncio.to_thread(decode_keyframe, packet, codec_name)


async def gather(forwarder, codec_name: str, gap: float = 3.0, timeout: float = 5.0) -> Evidence:  # type: ignore[no-untyped-def]
    """Two snapshots ``gap`` seconds apart, judged off the event loop."""
    first = await snapshot(forwarder, codec_name, timeout)
    if first is None:
        return Evidence(NO_VIDEO)
    await asyncio.sleep(gap)
    second = await snapshot(forwarder, codec_name, timeout)
    return await asyncio.to_thread(judge, first, second)
