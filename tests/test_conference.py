"""Room lifecycle: events, idempotent close, limits; with real peers where media matters."""

from __future__ import annotations

import asyncio

import pytest

from dutycall.client import SignallingClient, SignallingError, publish, subscribe
from dutycall.conference import Conference, ConferenceSettings
from dutycall.conference.errors import LimitExceeded
from dutycall.synthetic import EncodedColorTrack

from .utils import FrameReader, wait_for, signalling


def test_join_and_leave_events_reach_the_others():
    async def scenario():
        conference = Conference()
        room = conference.room("r")
        seen_a, seen_b = [], []
        a = room.join("A", seen_a.append)
        b = room.join("B", seen_b.append)
        assert seen_a == [{"type": "participant_joined", "participant_id": b.id, "name": "B"}]
        assert seen_b == []
        await room.leave(b, "left")
        await room.leave(b, "left")  # idempotent
        assert seen_a[-1]["type"] == "participant_left" and seen_a[-1]["reason"] == "left"
        assert len([e for e in seen_a if e["type"] == "participant_left"]) == 1
        assert list(room.participants) == [a.id]
        conference.forget_if_empty(room)
        assert "r" in conference.rooms
        await room.leave(a)
        conference.forget_if_empty(room)
        assert conference.rooms == {}

    asyncio.run(scenario())


def test_room_limit_is_enforced():
    async def scenario():
        room = Conference(ConferenceSettings(max_participants_per_room=2)).room("small")
        room.join("a", lambda m: None)
        room.join("b", lambda m: None)
        with pytest.raises(LimitExceeded):
            room.join("c", lambda m: None)
        assert len(room.participants) == 2

    asyncio.run(scenario())


def test_a_broken_notify_does_not_break_the_room():
    async def scenario():
        room = Conference().room("r")

        def broken(message):
            raise RuntimeError("socket gone")

        room.join("broken", broken)
        seen = []
        room.join("ok", seen.append)
        room.join("third", lambda m: None)
        assert [e["name"] for e in seen] == ["third"]

    asyncio.run(scenario())


async def test_closing_a_room_closes_everything_under_it(ws_url, server):
    pub_client = await signalling(ws_url).connect()
    await pub_client.join("closing", "publisher")
    pub_pc, published = await publish(pub_client, video=EncodedColorTrack((10, 200, 10)))
    clients, readers = [], []
    for i in range(2):
        client = await signalling(ws_url).connect()
        await client.join("closing", f"s{i}")
        pc, _, tracks = await subscribe(client, published["publication_id"])
        clients.append((client, pc))
        readers.append(FrameReader(tracks["video"]))
    await wait_for(lambda: all(r.frames >= 5 for r in readers), timeout=30)

    room = server.conference.rooms["closing"]
    publication = room.get_publication(published["publication_id"])
    subscriptions = list(publication.subscriptions)
    await room.close()
    await room.close()  # idempotent

    assert room.participants == {} and room.publications == {}
    assert publication.closed and publication.pc.connectionState == "closed"
    assert all(s.closed and s.pc.connectionState == "closed" for s in subscriptions)
    assert all(f._task is None for f in publication.forwarders.values())
    assert all(f.subscriber_count == 0 for f in publication.forwarders.values())
    for client, _ in clients:
        await client.wait_event("room_closed", timeout=5)
    # Media stops reaching the subscribers.
    await wait_for(lambda: all(r.ended for r in readers), timeout=15, what="subscriber tracks ended")
    # The sockets are still usable: joining again works, in a fresh room.
    client, _ = clients[0]
    with pytest.raises(SignallingError):
        await client.request("subscribe", publication_id=published["publication_id"], sdp="v=0")
    rejoined = await client.join("closing", "again")
    assert rejoined["publications"] == []

    for r in readers:
        await r.stop()
    for client, pc in clients:
        await pc.close()
        await client.close()
    await pub_pc.close()
    await pub_client.close()
