"""Media under pressure: stale frames are dropped before they are sent, never a live
publication because the server was slow."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time

import av

from dutycall.client import subscribe
from dutycall.conference.forwarding import STALE_AFTER, TrackForwarder

from .utils import FrameReader, signalling, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Track:
    kind = "video"


class _AudioTrack:
    kind = "audio"


def _packet(keyframe: bool = False) -> av.Packet:
    packet = av.Packet(b"\x00" * 10)
    packet.is_keyframe = keyframe
    return packet


def test_video_that_arrives_too_late_is_dropped_up_to_a_fresh_keyframe():
    forwarder = TrackForwarder(_Track(), None)  # type: ignore[arg-type]
    asked = []
    forwarder.request_keyframe = lambda: asked.append(1)  # type: ignore[method-assign]
    sub = forwarder.subscribe()
    now = time.monotonic()
    sub.push(_packet(keyframe=True), now)
    assert sub.take() is not None
    old = now - STALE_AFTER["video"] - 0.1
    sub.push(_packet(), old)  # the server read these late: not worth sending
    sub.push(_packet(), old)
    assert sub.take() is None and (sub.frames_stale, sub.queued) == (2, 0) and asked
    sub.push(_packet(), now)  # fresh, but it depends on the dropped ones
    assert sub.take() is None
    sub.push(_packet(keyframe=True), now)
    assert sub.take() is not None and sub.frames_forwarded == 2


def test_video_that_waits_too_long_in_the_queue_is_dropped_at_send_time():
    forwarder = TrackForwarder(_Track(), None)  # type: ignore[arg-type]
    forwarder.request_keyframe = lambda: None  # type: ignore[method-assign]
    sub = forwarder.subscribe()
    now = time.monotonic()
    for keyframe in (True, False, False):
        sub.push(_packet(keyframe=keyframe), now)
    sub._stale_after = -1.0  # as if the sender only now got round to this subscriber
    assert sub.take() is None and (sub.frames_stale, sub.queued) == (3, 0)


def test_the_keyframe_a_subscriber_waits_for_passes_although_late():
    forwarder = TrackForwarder(_Track(), None)  # type: ignore[arg-type]
    forwarder.request_keyframe = lambda: None  # type: ignore[method-assign]
    sub = forwarder.subscribe()
    now = time.monotonic()
    sub.push(_packet(keyframe=True), now - STALE_AFTER["video"] - 0.1)  # late, but the picture needs it
    assert sub.take() is not None
    sub.push(_packet(), now - STALE_AFTER["video"] - 0.1)  # a late delta frame is not
    sub.push(_packet(keyframe=True), now - 5.0)  # nor a keyframe from seconds ago
    assert sub.take() is None and sub.frames_stale == 2


def test_stale_audio_is_dropped_and_fresh_audio_kept():
    forwarder = TrackForwarder(_AudioTrack(), None)  # type: ignore[arg-type]
    sub = forwarder.subscribe()
    now = time.monotonic()
    for at in (now - 1.0, now - 0.5, now, now):
        sub.push(_packet(), at)
    assert sub.take() is not None and sub.frames_stale == 2 and sub.queued == 1


def test_a_tap_for_the_archive_keeps_late_frames():
    forwarder = TrackForwarder(_Track(), None)  # type: ignore[arg-type]
    tap = forwarder.subscribe(drop_stale=False)
    tap.push(_packet(keyframe=True), time.monotonic() - 30)
    assert tap.take() is not None and tap.frames_stale == 0


async def test_a_publication_survives_a_stall_of_the_servers_own_loop(ws_url, server):
    publisher = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.publisher_process", ws_url, "stall", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "DUTYCALL_TEST_COOKIES": json.dumps(server.cookies)})
    sent = [0]
    try:
        line = (await asyncio.wait_for(publisher.stdout.readline(), 60)).decode().split()
        assert line[0] == "published", line
        publication_id = line[1]

        async def follow() -> None:
            async for out in publisher.stdout:
                sent[0] = int(out.split()[1])

        follower = asyncio.ensure_future(follow())
        watcher = await signalling(ws_url).connect()
        await watcher.join("stall", "watcher")
        pc, _, tracks = await subscribe(watcher, publication_id)
        reader = FrameReader(tracks["video"])
        room = server.conference.rooms["stall"]
        forwarder = room.get_publication(publication_id).forwarders["video"]
        await wait_for(lambda: reader.frames >= 15, timeout=30, what="the watcher sees the publisher")
        forwarded = next(iter(forwarder._subscribers))

        # The server's event loop is stuck for longer than the media watchdog's 3 s (a CPU
        # starved server, a slow synchronous call). The publisher, in its own process, goes on
        # sending: what it sent meanwhile waits in the socket.
        time.sleep(3.5)
        stalled_at = time.monotonic()
        received_at = forwarder.frames_received
        await wait_for(lambda: forwarder.frames_received >= received_at + 30, timeout=20,
                       what="frames after the stall")
        # The publication was never removed: the watchdog judged when media arrived.
        assert room.get_publication(publication_id) is not None
        assert all(e.get("type") != "publication_removed" for e in list(watcher.events._queue))
        # The subscriber was not sent 3 s old media: it skipped to a fresh keyframe and goes on.
        assert forwarded.frames_stale > 0
        frames_at = reader.frames
        await wait_for(lambda: reader.frames >= frames_at + 30, timeout=20, what="the watcher's picture again")
        assert time.monotonic() - stalled_at < 20
        follower.cancel()
        await reader.stop()
        await pc.close()
        await watcher.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            publisher.kill()
        await publisher.wait()
