"""Evidence: a real face passes; an empty room, a black and a frozen picture fail.

The face is NASA's public-domain astronaut portrait shipped with scikit-image, shown the
way a console sends it: 640x360, the portrait letterboxed (squeezing it hides the face).
"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest
from skimage import data

from dutycall.client import publish
from dutycall.media import evidence
from dutycall.synthetic import EncodedImageTrack

from .utils import signalling, wait_for

W, H = 640, 360


def letterboxed_face(shift: int = 0) -> np.ndarray:
    canvas = np.full((H, W, 3), 40, np.uint8)
    face = cv2.resize(data.astronaut(), (H, H))
    left = (W - H) // 2 + shift
    canvas[:, left:left + H] = face
    return canvas


def empty_room(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:H, 0:W]
    room = np.stack([(xs // 3) % 256, (ys // 2) % 256, np.full_like(xs, 120)], axis=-1).astype(np.int16)
    room += rng.integers(-6, 6, size=room.shape)
    return np.clip(room, 0, 255).astype(np.uint8)


def test_judge_verdicts_on_pictures():
    assert evidence.judge(letterboxed_face(0), letterboxed_face(6)).verdict == evidence.VERIFIED
    assert evidence.judge(empty_room(1), empty_room(2)).verdict == evidence.NO_FACE
    black = np.zeros((H, W, 3), np.uint8)
    assert evidence.judge(black, black).verdict == evidence.BLACK
    face = letterboxed_face(0)
    assert evidence.judge(face, face.copy()).verdict == evidence.FROZEN
    assert evidence.judge(None, face).verdict == evidence.NO_VIDEO
    verdict = evidence.judge(letterboxed_face(0), letterboxed_face(6))
    assert verdict.jpeg[:2] == b"\xff\xd8" and verdict.sha256 == hashlib.sha256(verdict.jpeg).hexdigest()


def test_find_loop_sees_a_repeating_picture_and_not_real_movement():
    rng = np.random.default_rng(3)

    def noisy(picture):
        return np.clip(picture + rng.normal(0, 1.0, picture.shape), 0, 255)

    scene = [cv2.resize(cv2.cvtColor(letterboxed_face(shift), cv2.COLOR_RGB2GRAY), evidence.THUMBNAIL,
                        interpolation=cv2.INTER_AREA).astype(np.float32) for shift in range(-40, 40, 2)]
    # A 0.67 s clip (20 pictures) played over and over, with encoding noise on every picture.
    looped = [noisy(scene[i % 20]) for i in range(90)]
    assert evidence.find_loop(looped, 30.0) == pytest.approx(20 / 30)
    # A slow pan keeps drifting; a still picture never moves away; both are no loop.
    assert evidence.find_loop([noisy(scene[i // 3]) for i in range(90)], 30.0) is None
    assert evidence.find_loop([noisy(scene[0]) for _ in range(90)], 30.0) is None
    # Swinging back and forth over one place is not a loop unless the whole path repeats.
    swing = [noisy(scene[int(10 + 9 * np.sin(i / 7.3) + 3 * np.sin(i / 2.9))]) for i in range(90)]
    assert evidence.find_loop(swing, 30.0) is None


async def _evidence_from_stream(ws_url, server, images, codec="vp8", hold=10, gap=1.0):
    client = await signalling(ws_url).connect()
    await client.join("evidence", "room")
    track = EncodedImageTrack(images, codec=codec, hold=hold)
    pc, published = await publish(client, video=track, video_codec=codec.upper())
    publication = server.conference.rooms["evidence"].get_publication(published["publication_id"])
    forwarder = publication.forwarders["video"]
    await wait_for(lambda: forwarder.frames_received >= 5, timeout=20)
    try:
        return await evidence.gather(forwarder, codec.upper(), gap=gap), track, forwarder
    finally:
        await pc.close()
        await client.close()


@pytest.mark.parametrize("codec", ["vp8", "h264"])
async def test_evidence_from_a_live_stream_with_a_face(ws_url, server, codec):
    # The officer moves: a slow pan over four seconds, longer than the whole check.
    pan = [letterboxed_face(shift) for shift in range(-30, 30)]
    result, track, forwarder = await _evidence_from_stream(ws_url, server, pan, codec, hold=2)
    assert result.verdict == evidence.VERIFIED, result
    assert (result.width, result.height) == (W, H) and result.faces >= 1
    # One keyframe was asked for (and one to start): the tap records from it, then leaves.
    assert track.keyframes_sent <= 3


async def test_evidence_from_a_black_or_frozen_or_empty_stream(ws_url, server):
    black = np.zeros((H, W, 3), np.uint8)
    result, _, _ = await _evidence_from_stream(ws_url, server, [black])
    assert result.verdict == evidence.BLACK
    result, _, _ = await _evidence_from_stream(ws_url, server, [letterboxed_face(0)])
    assert result.verdict == evidence.FROZEN
    result, _, _ = await _evidence_from_stream(ws_url, server, [empty_room(1), empty_room(2)])
    assert result.verdict == evidence.NO_FACE


async def test_a_looped_recording_fails(ws_url, server):
    # A short clip of a moving officer played over and over: each picture is right, the
    # sequence repeats every 20 frames (0.67 s).
    clip = [letterboxed_face(shift) for shift in range(-20, 20, 4)]
    result, _, _ = await _evidence_from_stream(ws_url, server, clip, hold=2, gap=2.5)
    assert result.verdict == evidence.LOOPED, result
    assert result.jpeg is not None and result.faces >= 1  # still kept as the record
