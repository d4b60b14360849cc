"""Integration: real aiortc peers publish and subscribe through the real server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest

from dutycall.client import publish, subscribe
from dutycall.synthetic import EncodedColorTrack

from .utils import FrameReader, close_colour, signalling, wait_for

RED = (220, 30, 30)


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_one_publisher_to_several_subscribers(ws_url, server, codec):
    pub_client = await signalling(ws_url).connect()
    await pub_client.join("r1", "publisher")
    track = EncodedColorTrack(RED, codec=codec.lower())
    pub_pc, published = await publish(pub_client, video=track, video_codec=codec)
    assert published["codecs"]["video"].upper() == f"VIDEO/{codec}"

    subs = []
    for i in range(3):
        client = await signalling(ws_url).connect()
        joined = await client.join("r1", f"sub{i}")
        assert [p["publication_id"] for p in joined["publications"]] == [published["publication_id"]]
        pc, reply, tracks = await subscribe(client, published["publication_id"])
        subs.append((client, pc, FrameReader(tracks["video"])))

    for _, _, reader in subs:
        await wait_for(lambda reader=reader: reader.frames >= 30 and reader.last_rgb, timeout=30,
                       what="30 decoded frames")
        assert close_colour(reader.last_rgb, RED), reader.last_rgb
    # Forwarded, not re-encoded: the publisher made keyframes only when asked.
    assert track.keyframes_sent <= 1 + 3 * 4
    forwarder = server.conference.rooms["r1"].get_publication(published["publication_id"]).forwarders["video"]
    assert forwarder.subscriber_count == 3

    for client, pc, reader in subs:
        await reader.stop()
        await pc.close()
        await client.close()
    await pub_pc.close()
    await pub_client.close()
    await wait_for(lambda: "r1" not in server.conference.rooms, what="room dropped")


async def _publisher(ws_url, room, rgb=RED, codec="vp8", audio=False):
    client = await signalling(ws_url).connect()
    await client.join(room, "publisher")
    track = EncodedColorTrack(rgb, codec=codec)
    audio_track = None
    if audio:
        from aiortc.mediastreams import AudioStreamTrack

        audio_track = AudioStreamTrack()
    pc, reply = await publish(client, video=track, audio=audio_track)
    return client, pc, track, reply


async def _subscriber(ws_url, room, publication_id, name="sub", kinds=("video",)):
    client = await signalling(ws_url).connect()
    await client.join(room, name)
    pc, reply, tracks = await subscribe(client, publication_id, kinds=kinds)
    return client, pc, {k: FrameReader(t) for k, t in tracks.items()}


async def test_audio_and_video_are_forwarded(ws_url, server):
    pub_client, pub_pc, track, published = await _publisher(ws_url, "av", audio=True)
    assert published["kinds"] == ["audio", "video"]
    assert published["codecs"]["audio"].lower() == "audio/opus"
    client, pc, readers = await _subscriber(ws_url, "av", published["publication_id"], kinds=("audio", "video"))
    await wait_for(lambda: readers["audio"].frames >= 50 and readers["video"].frames >= 15, timeout=30)
    for reader in readers.values():
        await reader.stop()
    for c in (client, pub_client):
        await c.close()
    await pc.close()
    await pub_pc.close()


async def test_late_joiner_gets_a_picture_within_one_second(ws_url, server):
    pub_client, pub_pc, track, published = await _publisher(ws_url, "late")
    first_client, first_pc, first = await _subscriber(ws_url, "late", published["publication_id"], "first")
    await wait_for(lambda: first["video"].frames >= 45, timeout=30, what="first subscriber running")
    keyframes_before = track.keyframes_sent

    late_client = await signalling(ws_url).connect()
    await late_client.join("late", "late")
    late_pc, reply, tracks = await subscribe(late_client, published["publication_id"])
    connected_at: list[float] = []

    @late_pc.on("connectionstatechange")
    def _state() -> None:
        if late_pc.connectionState == "connected":
            connected_at.append(time.monotonic())

    late = FrameReader(tracks["video"])
    await wait_for(lambda: late.first_frame_at is not None, timeout=20, what="late joiner's first frame")
    await wait_for(lambda: connected_at, timeout=5)
    assert late.first_frame_at - connected_at[0] <= 1.0, late.first_frame_at - connected_at[0]
    # The picture came from a keyframe the publisher made on request (PLI relayed).
    assert track.keyframes_sent > keyframes_before
    await wait_for(lambda: close_colour(late.last_rgb, RED), timeout=10)

    for r in (first["video"], late):
        await r.stop()
    for pc in (first_pc, late_pc, pub_pc):
        await pc.close()
    for c in (first_client, late_client, pub_client):
        await c.close()


async def _assert_removal_announced(server, watcher, published, reason_in, started, budget=5.0):
    event = await watcher.wait_event("publication_removed", timeout=budget + 5,
                                     publication_id=published["publication_id"])
    elapsed = time.monotonic() - started
    assert elapsed <= budget, f"announced after {elapsed:.1f}s"
    assert event["reason"] in reason_in, event
    return event


async def test_publisher_leaving_is_announced_at_once(ws_url, server):
    pub_client, pub_pc, track, published = await _publisher(ws_url, "leave")
    client, pc, readers = await _subscriber(ws_url, "leave", published["publication_id"])
    await wait_for(lambda: readers["video"].frames >= 10, timeout=30)
    started = time.monotonic()
    await pub_client.request("leave")
    await _assert_removal_announced(server, client, published, {"left"}, started, budget=1.0)
    await client.wait_event("participant_left", timeout=5)
    # The subscriber's track ends: nothing is left forwarding.
    await wait_for(lambda: readers["video"].ended or pc.connectionState == "closed", timeout=10)
    assert server.conference.rooms["leave"].publications == {}
    await readers["video"].stop()
    await pc.close()
    await pub_pc.close()
    await client.close()
    await pub_client.close()


async def test_vanished_publisher_socket_is_announced_within_5s(ws_url, server):
    pub_client, pub_pc, track, published = await _publisher(ws_url, "vanish")
    client, pc, readers = await _subscriber(ws_url, "vanish", published["publication_id"])
    await wait_for(lambda: readers["video"].frames >= 10, timeout=30)
    started = time.monotonic()
    # Drop the socket without a goodbye and stop the media, as a crashed tab would.
    await pub_client._session.close()
    await pub_pc.close()
    await _assert_removal_announced(server, client, published, {"disconnected", "connection_closed", "media_timeout", "ended"}, started)
    await readers["video"].stop()
    await pc.close()
    await client.close()


async def test_publisher_whose_media_stops_is_removed_within_5s(ws_url, server):
    pub_client, pub_pc, track, published = await _publisher(ws_url, "frozen")
    client, pc, readers = await _subscriber(ws_url, "frozen", published["publication_id"])
    await wait_for(lambda: readers["video"].frames >= 10, timeout=30)
    started = time.monotonic()
    # Signalling and ICE stay up; only the media stops, as when a camera or network path dies.
    track.pause()
    await _assert_removal_announced(server, client, published, {"media_timeout"}, started)
    # The publisher itself is told too, so it can publish again.
    await pub_client.wait_event("publication_removed", timeout=5, publication_id=published["publication_id"])
    await readers["video"].stop()
    for p in (pc, pub_pc):
        await p.close()
    for c in (client, pub_client):
        await c.close()


async def test_frozen_subscriber_does_not_stall_the_others(ws_url, server):
    import os
    import signal
    import sys

    pub_client, pub_pc, track, published = await _publisher(ws_url, "frozen-sub")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.subscriber_process", ws_url, "frozen-sub", published["publication_id"],
        stdout=asyncio.subprocess.PIPE, cwd=os.path.dirname(os.path.dirname(__file__)),
        env={**os.environ, "DUTYCALL_TEST_COOKIES": json.dumps(server.cookies)},
    )
    remote_frames = [0]

    async def follow() -> None:
        async for line in proc.stdout:
            remote_frames[0] = int(line.split()[1])

    follower = asyncio.ensure_future(follow())
    client, pc, readers = await _subscriber(ws_url, "frozen-sub", published["publication_id"])
    healthy = readers["video"]
    try:
        await wait_for(lambda: remote_frames[0] >= 15 and healthy.frames >= 15, timeout=30, what="both receiving")
        os.kill(proc.pid, signal.SIGSTOP)
        frozen_at, frames_at = time.monotonic(), healthy.frames
        # While one subscriber is frozen solid, the other keeps its full frame rate...
        await wait_for(lambda: time.monotonic() - frozen_at >= 4.0, timeout=10)
        rate = (healthy.frames - frames_at) / (time.monotonic() - frozen_at)
        assert rate >= 25, f"healthy subscriber fell to {rate:.1f} fps"
        # ...and the server notices the frozen client (it stops answering pings) and
        # removes it with everything it held.
        await wait_for(lambda: server.conference.stats()["participants"] == 2, timeout=15,
                       what="frozen participant removed")
        assert server.conference.stats()["subscriptions"] == 1
        frames_at = healthy.frames
        await wait_for(lambda: healthy.frames >= frames_at + 30, timeout=10, what="healthy still flowing")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        follower.cancel()
        await healthy.stop()
        for p in (pc, pub_pc):
            await p.close()
        for c in (client, pub_client):
            await c.close()


async def test_floor_subscription_follows_whoever_has_the_floor(ws_url, server):
    BLUE = (30, 40, 220)
    red_client, red_pc, red_track, red_pub = await _publisher(ws_url, "floor", rgb=RED)
    blue_client, blue_pc, blue_track, blue_pub = await _publisher(ws_url, "floor", rgb=BLUE)
    viewer = await signalling(ws_url).connect()
    await viewer.join("floor", "viewer")
    pc, reply, tracks = await subscribe(viewer, None, kinds=("video",))
    assert reply["floor"] is True and reply["publication_id"] is None
    reader = FrameReader(tracks["video"])
    room = server.conference.rooms["floor"]

    room.set_floor(room.get_publication(red_pub["publication_id"]))
    await wait_for(lambda: close_colour(reader.last_rgb, RED), timeout=20, what="red on the floor")
    switched_at = time.monotonic()
    room.set_floor(room.get_publication(blue_pub["publication_id"]))
    await wait_for(lambda: close_colour(reader.last_rgb, BLUE), timeout=20, what="blue on the floor")
    # One connection all along; the switch shows the new picture promptly (a keyframe was asked for).
    assert time.monotonic() - switched_at < 3.0
    assert len(server.conference.rooms["floor"].floor_subscriptions) == 1
    frames = reader.frames
    await wait_for(lambda: reader.frames >= frames + 30, timeout=10, what="still flowing after the switch")
    # The floor's publisher leaving empties the floor; nothing breaks.
    await blue_client.request("unpublish", publication_id=blue_pub["publication_id"])
    assert room.floor is None
    await reader.stop()
    for p in (pc, red_pc, blue_pc):
        await p.close()
    for c in (viewer, red_client, blue_client):
        await c.close()
