"""Integration: real aiortc peers publish and subscribe through the real server."""

from __future__ import annotations

import asyncio
import time

import pytest

from dutycall.client import SignallingClient, publish, subscribe
from dutycall.synthetic import EncodedColorTrack

from .utils import FrameReader, close_colour, wait_for

RED = (220, 30, 30)


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_one_publisher_to_several_subscribers(ws_url, server, codec):
    pub_client = await SignallingClient(ws_url).connect()
    await pub_client.join("r1", "publisher")
    track = EncodedColorTrack(RED, codec=codec.lower())
    pub_pc, published = await publish(pub_client, video=track, video_codec=codec)
    assert published["codecs"]["video"].upper() == f"VIDEO/{codec}"

    subs = []
    for i in range(3):
        client = await SignallingClient(ws_url).connect()
        joined = await client.join("r1", f"sub{i}")
        assert [p["publication_id"] for p in joined["publications"]] == [published["publication_id"]]
        pc, reply, tracks = await subscribe(client, published["publication_id"])
        subs.append((client, pc, FrameReader(tracks["video"])))

    for _, _, reader in subs:
        await wait_for(lambda: reader.frames >= 30 and reader.last_rgb, timeout=30, what="30 decoded frames")
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
