"""Room lifecycle: events, idempotent close, limits; with real peers where media matters."""

from __future__ import annotations

import asyncio

import pytest

from dutycall.client import SignallingError, publish, subscribe
from dutycall.conference import Conference, ConferenceSettings, aiortc_compat
from dutycall.conference.errors import LimitExceeded
from dutycall.synthetic import EncodedColorTrack

from .utils import FrameReader, signalling, wait_for


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


# -- lifetimes, with the conference driven in-process by real aiortc peers ---------------------


class Peers:
    """Client peer connections of one test, talking to a room of this process over loopback."""

    def __init__(self) -> None:
        self.pcs: list = []

    async def publish(self, room, participant, track):
        from aiortc import RTCSessionDescription

        from dutycall.client import new_peer_connection
        from dutycall.conference.sdp import parse_offer

        pc = new_peer_connection()
        self.pcs.append(pc)
        transceiver = pc.addTransceiver(track, direction="sendonly")
        aiortc_compat.on_keyframe_request(transceiver.sender, track.request_keyframe)
        await pc.setLocalDescription(await pc.createOffer())
        publication, sdp = await room.publish(participant, parse_offer(pc.localDescription.sdp, "publish"),
                                              "camera", None)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        return pc, publication

    async def subscribe(self, room, participant, publication=None):
        """Subscribe to ``publication`` (None: the floor); returns the client pc and the subscription."""
        from aiortc import RTCSessionDescription

        from dutycall.client import new_peer_connection
        from dutycall.conference.sdp import parse_offer

        pc = new_peer_connection()
        self.pcs.append(pc)
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        offer = parse_offer(pc.localDescription.sdp, "subscribe")
        if publication is None:
            subscription, sdp = await room.subscribe_floor(participant, offer)
        else:
            subscription, sdp = await room.subscribe(participant, publication.id, offer)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        return pc, subscription

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()


async def settled(before: set) -> None:
    """Wait until every task started since ``before`` has ended (aiortc ends some a little later)."""
    try:
        await wait_for(lambda: not {t for t in asyncio.all_tasks() - before if not t.done()}, timeout=15)
    except AssertionError:
        raise AssertionError(f"tasks left running: {asyncio.all_tasks() - before}") from None


def conference_tasks() -> set:
    """The pending tasks running this package's conference code."""
    return {t for t in asyncio.all_tasks() if not t.done()
            and "dutycall/conference/" in getattr(t.get_coro(), "cr_code", None).co_filename
            if getattr(t.get_coro(), "cr_code", None) is not None}


def forwarded(subscription) -> int:
    return sum(getattr(t, "frames_forwarded", 0) for t in subscription.tracks)


def of_type(events, *types):
    return [e["type"] for e in events if e["type"] in types]


async def test_closing_a_room_closes_everything_below_it_once_with_the_events_in_order():
    before = asyncio.all_tasks()
    conference = Conference(ConferenceSettings(ice_addresses=["127.0.0.1"]))
    left = []
    conference.on_participant_left.append(lambda p, reason: left.append((p.name, reason)))
    room = conference.room("closing")
    events = {name: [] for name in "ABC"}
    a = room.join("A", events["A"].append)
    b = room.join("B", events["B"].append)
    c = room.join("C", events["C"].append)
    peers = Peers()
    track = EncodedColorTrack((10, 200, 10))
    _, publication = await peers.publish(room, a, track)
    _, subscription = await peers.subscribe(room, b, publication)
    _, floor = await peers.subscribe(room, c)
    room.set_floor(publication)
    await wait_for(lambda: forwarded(subscription) >= 3 and forwarded(floor) >= 3, timeout=30,
                   what="media through both subscriptions")
    for seen in events.values():
        seen.clear()

    closes = []
    for child in (publication, subscription, floor):
        original = child.close

        async def counted(reason, original=original, child=child):
            closes.append(child)
            await original(reason)

        child.close = counted
    # Twice at once: the second waits for the first, nothing happens twice.
    await asyncio.gather(room.close(), room.close())
    await room.close()

    # Parents closed their children: each publication and subscription once, with why.
    assert publication.closed and publication.close_reason == "room_closed"
    assert subscription.closed and subscription.close_reason == "publication_closed"
    assert floor.closed and floor.close_reason == "room_closed"
    assert sorted(map(id, closes)) == sorted(map(id, (publication, subscription, floor)))
    assert all(pc.connectionState == "closed" for pc in (publication.pc, subscription.pc, floor.pc))
    assert all(f._task is None and f.subscriber_count == 0 for f in publication.forwarders.values())
    assert room.participants == {} and room.floor is None and room.floor_subscriptions == set()
    assert publication.subscriptions == set() and a.subscriptions == b.subscriptions == c.subscriptions == {}
    assert left == [("A", "room_closed"), ("B", "room_closed"), ("C", "room_closed")]
    # The protocol's events, once each and in order (participants in join order).
    assert of_type(events["A"], "room_closed", "floor", "publication_removed") == [
        "room_closed", "floor", "publication_removed"]
    assert of_type(events["B"], "floor", "subscription_closed", "publication_removed", "participant_left",
                   "room_closed") == ["floor", "subscription_closed", "publication_removed", "participant_left",
                                      "room_closed"]
    assert events["B"][1]["reason"] == "publication_closed" and events["B"][2]["reason"] == "room_closed"
    assert [(e["type"], e.get("name")) for e in events["C"]] == [
        ("floor", None), ("publication_removed", None), ("participant_left", "A"), ("participant_left", "B"),
        ("room_closed", None)]
    # Nothing of ours is left running; once the clients hang up, nothing at all.
    assert conference_tasks() == set()
    await peers.close()
    await settled(before)


async def test_a_publication_whose_media_stops_is_removed_once_by_its_room():
    before = asyncio.all_tasks()
    conference = Conference(ConferenceSettings(ice_addresses=["127.0.0.1"], media_timeout=0.6))
    room = conference.room("watchdog")
    seen_pub, seen_sub = [], []
    a = room.join("A", seen_pub.append)
    b = room.join("B", seen_sub.append)
    peers = Peers()
    track = EncodedColorTrack((200, 10, 10))
    _, publication = await peers.publish(room, a, track)
    _, subscription = await peers.subscribe(room, b, publication)
    await wait_for(lambda: forwarded(subscription) >= 3, timeout=30, what="media forwarded")
    track.pause()  # the camera stops: the publication's watchdog reports it to the room

    await wait_for(lambda: publication.closed and "publication_removed" in of_type(seen_sub, "publication_removed"),
                   timeout=10, what="publication removed")
    assert publication.close_reason == "media_timeout"
    assert of_type(seen_sub, "subscription_closed", "publication_removed") == [
        "subscription_closed", "publication_removed"]
    assert seen_sub[-1]["reason"] == "media_timeout"
    assert of_type(seen_pub, "publication_removed") == ["publication_removed"]  # its publisher is told too
    assert a.publications == {} and b.subscriptions == {} and publication.subscriptions == set()
    assert subscription.closed and subscription.close_reason == "publication_closed"
    await room.close()
    # Removed once: closing the room afterwards announces nothing about it again.
    assert of_type(seen_sub, "publication_removed") == ["publication_removed"]
    assert conference_tasks() == set()
    await peers.close()
    await settled(before)


async def test_a_subscription_whose_connection_closes_is_removed_once_by_its_room():
    before = asyncio.all_tasks()
    conference = Conference(ConferenceSettings(ice_addresses=["127.0.0.1"]))
    room = conference.room("hangup")
    seen = []
    a = room.join("A", lambda m: None)
    b = room.join("B", seen.append)
    peers = Peers()
    _, publication = await peers.publish(room, a, EncodedColorTrack((10, 10, 200)))
    sub_pc, subscription = await peers.subscribe(room, b, publication)
    await wait_for(lambda: forwarded(subscription) >= 3, timeout=30, what="media forwarded")
    await sub_pc.close()  # the subscriber's side hangs up; its DTLS close_notify ends ours

    await wait_for(lambda: subscription.closed and b.subscriptions == {}, timeout=15, what="subscription removed")
    closed = [e for e in seen if e["type"] == "subscription_closed"]
    assert closed == [{"type": "subscription_closed", "subscription_id": subscription.id,
                       "publication_id": publication.id, "reason": "connection_closed"}]
    assert publication.subscriptions == set() and not publication.closed  # the publication goes on
    await room.close()
    assert len([e for e in seen if e["type"] == "subscription_closed"]) == 1
    assert conference_tasks() == set()
    await peers.close()
    await settled(before)


async def test_two_leaves_at_once_remove_the_participant_once():
    before = asyncio.all_tasks()
    # The socket closing and the room closing can race: the second waits for the first.
    conference = Conference(ConferenceSettings(ice_addresses=["127.0.0.1"]))
    room = conference.room("race")
    seen = []
    left = []
    conference.on_participant_left.append(lambda p, reason: left.append(p.id))
    watcher = room.join("W", seen.append)
    a = room.join("A", lambda m: None)
    peers = Peers()
    _, publication = await peers.publish(room, a, EncodedColorTrack((10, 10, 10)))
    await wait_for(lambda: publication.is_live("video"), timeout=30, what="video live")
    await asyncio.gather(room.leave(a, "disconnected"), room.leave(a, "left"))
    assert [e["type"] for e in seen if e["type"] in ("publication_removed", "participant_left")] == [
        "publication_removed", "participant_left"]
    assert seen[-1]["reason"] == "disconnected" and left == [a.id]
    assert list(room.participants) == [watcher.id]
    await room.close()
    await peers.close()
    await settled(before)


# -- the public API the layers above use ------------------------------------------------------


async def test_participants_are_found_by_their_tag_and_their_media_judged_live():
    before = asyncio.all_tasks()
    from dutycall.conference import is_live, video_codec

    conference = Conference(ConferenceSettings(ice_addresses=["127.0.0.1"]))
    joined, left = [], []
    conference.on_participant_joined.append(lambda p: joined.append(p.tag))
    conference.on_participant_left.append(lambda p, reason: left.append((p.tag, reason)))
    standby, rollcall = conference.room("standby-12"), conference.room("rollcall-3")
    heard = {"standby": [], "console": [], "host": []}
    on_standby = standby.join("值班室12", heard["standby"].append, tag="duty_room:12", shown={"duty_room_id": 12})
    console = rollcall.join("值班室12", heard["console"].append, tag="duty_room:12", shown={"duty_room_id": 12})
    host = rollcall.join("host", heard["host"].append)
    assert joined == ["duty_room:12", "duty_room:12", None]
    assert console.describe() == {"participant_id": console.id, "name": "值班室12", "duty_room_id": 12}
    assert conference.participants_tagged("duty_room:12") == [on_standby, console]
    assert conference.participants_tagged("duty_room:12", room="rollcall-3") == [console]
    assert conference.participants_tagged("duty_room:99") == []
    assert conference.participants("rollcall-3") == [console, host] and conference.participants("nowhere") == []
    assert conference.find_room("nowhere") is None and "nowhere" not in conference.rooms
    assert conference.is_occupied("rollcall-3") and not conference.is_occupied("nowhere")
    assert console.room_name == "rollcall-3"
    assert conference.publication_of("duty_room:12") is None

    peers = Peers()
    track = EncodedColorTrack((10, 200, 10))
    _, publication = await peers.publish(rollcall, console, track)
    assert conference.publication_of("duty_room:12") is publication
    assert conference.publication_of("duty_room:12", room="standby-12") is None
    assert video_codec(publication) == "video/VP8" and publication.codec_name("video") == "VP8"
    await wait_for(lambda: is_live(publication, "video"), timeout=30, what="video live")
    assert is_live(console, "video") and not is_live(console, "audio") and not is_live(on_standby, "video")
    # The evidence tap: a keyframe-gated subscriber track.
    tap = publication.tap("video")
    first = await asyncio.wait_for(tap.recv(), 15)
    assert first.is_keyframe
    tap.stop()
    assert publication.tap("audio") is None
    assert await publication.next_keyframe(0.01) in (True, False)

    assert conference.notify_tagged("duty_room:12", {"type": "rollcall_ring"}, room="rollcall-3") == 1
    assert heard["console"][-1] == {"type": "rollcall_ring"} and heard["standby"] == []
    conference.broadcast("rollcall-3", {"type": "rollcall_floor"})
    assert heard["host"][-1] == {"type": "rollcall_floor"}
    assert conference.set_floor("rollcall-3", publication) and rollcall.floor is publication
    assert not conference.set_floor("nowhere", None)

    track.pause()
    await wait_for(lambda: not is_live(publication, "video", within=0.3), timeout=10, what="video not live")
    await rollcall.leave(console, "left")
    assert conference.participants_tagged("duty_room:12") == [on_standby]
    assert left == [("duty_room:12", "left")]
    await conference.close()
    assert conference.participants_tagged("duty_room:12") == []
    await peers.close()
    await settled(before)


async def test_a_console_identity_is_tagged_and_shown_as_before():
    # The layer above files a console under an opaque tag and chooses what others see of it:
    # the conference knows no duty rooms, and the wire keeps duty_room_id.
    from dutycall.conference import SignallingPeer

    conference = Conference()
    sent = []
    peer = SignallingPeer(conference, sent.append, identity={"name": "市总值班室", "kind": "device",
                                                             "account_id": None},
                          tag="duty_room:7", shown={"duty_room_id": 7})
    await peer.handle_text('{"type": "join", "room": "duty", "id": 1}')
    assert sent[-1]["type"] == "joined" and peer.room_name == "duty"
    assert sent[-1]["participants"] == [{"participant_id": peer.participant.id, "name": "市总值班室",
                                         "duty_room_id": 7}]
    assert conference.participants_tagged("duty_room:7") == [peer.participant]
    await peer.close()
    assert peer.room_name is None and conference.participants_tagged("duty_room:7") == []
