"""Media workers: subscribers' connections in worker processes, publications piped to them."""

from __future__ import annotations

import os
import signal

import aiohttp
import pytest

from dutycall.client import publish, sign_in, subscribe
from dutycall.synthetic import EncodedColorTrack
from dutycall.web import create_app
from dutycall.web.keys import CONFERENCE

from .conftest import ADMIN_PASSWORD, AUTH, make_config
from .utils import FrameReader, close_colour, signalling, wait_for

GREEN = (30, 200, 60)


@pytest.fixture
async def workers_server(aiohttp_server, tmp_path, monkeypatch):
    # One account plays every console here (the limit per account is for people, not this test).
    monkeypatch.setattr("dutycall.web.live.MAX_SOCKETS_PER_ACCOUNT", 32)
    app = create_app(make_config(f"sqlite:///{tmp_path}/dutycall.sqlite3", media_workers=2))
    srv = await aiohttp_server(app, host="127.0.0.1")
    srv.conference = app[CONFERENCE]
    srv.cookies = await sign_in(f"http://127.0.0.1:{srv.port}", "admin", ADMIN_PASSWORD)
    srv.ws_url = f"ws://127.0.0.1:{srv.port}/ws"
    AUTH[srv.ws_url] = srv.cookies
    yield srv
    AUTH.pop(srv.ws_url, None)


async def _publisher(ws_url: str, room: str):
    client = await signalling(ws_url).connect()
    await client.join(room, "leader")
    track = EncodedColorTrack(GREEN, codec="vp8")
    pc, published = await publish(client, video=track, video_codec="VP8")
    return client, pc, track, published


async def _subscriber(ws_url: str, room: str, name: str, publication_id: str, decode: bool = True):
    """A console; ``decode=False``: it counts the encoded frames it receives (cheap)."""
    client = await signalling(ws_url).connect()
    await client.join(room, name)
    pc, reply, tracks = await subscribe(client, publication_id, passthrough=not decode)
    return client, pc, reply, FrameReader(tracks["video"])


async def test_a_greeting_fan_out_spans_two_workers(workers_server):
    server = workers_server
    conference = server.conference
    stats = conference.worker_stats()
    assert len(stats) == 2 and all(s["pid"] not in (0, os.getpid()) for s in stats)
    assert len({s["pid"] for s in stats}) == 2

    pub_client, pub_pc, track, published = await _publisher(server.ws_url, "greeting-t")
    publication_id = published["publication_id"]
    # Lean consoles (they count encoded frames; one decodes): the test process also runs the
    # server's control side and the publisher, on a shared 2-core machine.
    subscribers = [await _subscriber(server.ws_url, "greeting-t", f"room{i}", publication_id, decode=i == 0)
                   for i in range(6)]

    # Every console gets the leader's picture, each through a worker's own connection.
    try:
        await wait_for(lambda: all(s[3].frames >= 30 for s in subscribers), timeout=90)
    except AssertionError:
        raise AssertionError(f"30 frames at every console: {[s[3].frames for s in subscribers]}, "
                             f"workers {conference.worker_stats()}") from None
    reader = subscribers[0][3]
    await wait_for(lambda: reader.last_rgb, timeout=30, what="a decoded picture")
    assert close_colour(reader.last_rgb, GREEN), reader.last_rgb
    stats = conference.worker_stats()
    assert sorted(s["subscriptions"] for s in stats) == [3, 3], stats
    # The control process sends the leader's frames twice (one pipe per worker), not 6 times.
    forwarder = conference.rooms["greeting-t"].get_publication(publication_id).forwarders["video"]
    assert forwarder.subscriber_count == 2
    # Keyframes only when asked (the synthetic encoder makes none by itself): the later
    # subscribers on each worker got theirs by a request sent back up the pipe.
    assert track.keyframes_sent <= 1 + 6 * 4
    await wait_for(lambda: sum(s["frames_forwarded"] for s in conference.worker_stats()) >= 6 * 30,
                   timeout=10, what="the workers' reports")
    # Operators see each worker in /metrics.
    async with aiohttp.ClientSession(cookies=server.cookies) as http:
        async with http.get(f"http://127.0.0.1:{server.port}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
    assert 'dutycall_media_worker_subscriptions{worker="media0"} 3.0' in text
    assert 'dutycall_media_worker_subscriptions{worker="media1"} 3.0' in text
    assert 'dutycall_worker_cpu_seconds_total{mode="total",worker="media1"}' in text

    # Unsubscribing closes the worker's connections; the last one on a worker closes its pipe.
    for client, pc, reply, reader in subscribers:
        await client.request("unsubscribe", subscription_id=reply["subscription_id"])
        await reader.stop()
        await pc.close()
        await client.close()
    await wait_for(lambda: forwarder.subscriber_count == 0, timeout=20, what="both pipes closed")
    await wait_for(lambda: all(s["subscriptions"] == 0 for s in conference.worker_stats()), timeout=10,
                   what="no subscriptions left in the workers")
    await pub_pc.close()
    await pub_client.close()


async def test_a_publication_that_ends_ends_its_subscriptions_in_the_workers(workers_server):
    server = workers_server
    pub_client, pub_pc, _, published = await _publisher(server.ws_url, "greeting-e")
    publication_id = published["publication_id"]
    subscribers = [await _subscriber(server.ws_url, "greeting-e", f"room{i}", publication_id, decode=False)
                   for i in range(2)]
    for _, _, _, reader in subscribers:
        await wait_for(lambda reader=reader: reader.frames >= 5, timeout=60, what="frames")
    await pub_client.request("unpublish", publication_id=publication_id)
    for client, _, reply, _ in subscribers:
        event = await client.wait_event("subscription_closed", subscription_id=reply["subscription_id"])
        assert event["reason"] == "publication_closed"
    await wait_for(lambda: all(s["subscriptions"] == 0 for s in server.conference.worker_stats()), timeout=10,
                   what="the workers closed them")
    for client, pc, _, reader in subscribers:
        await reader.stop()
        await pc.close()
        await client.close()
    await pub_pc.close()
    await pub_client.close()


async def test_a_worker_that_dies_ends_its_subscriptions_and_is_started_again(workers_server):
    server = workers_server
    conference = server.conference
    pub_client, pub_pc, _, published = await _publisher(server.ws_url, "greeting-k")
    publication_id = published["publication_id"]
    subscribers = [await _subscriber(server.ws_url, "greeting-k", f"room{i}", publication_id, decode=False)
                   for i in range(2)]
    for _, _, _, reader in subscribers:
        await wait_for(lambda reader=reader: reader.frames >= 5, timeout=60, what="frames")
    victim = conference.worker_stats()[0]
    on_victim = set(conference.workers.links[0].subscriptions)
    closed = next(s for s in subscribers if s[2]["subscription_id"] in on_victim)
    survivor = next(s for s in subscribers if s is not closed)
    os.kill(victim["pid"], signal.SIGKILL)

    # Its subscriber is told at once (not after ICE's 30 s), the other one goes on.
    client, pc, reply, reader = closed
    event = await client.wait_event("subscription_closed", subscription_id=reply["subscription_id"], timeout=20)
    assert event["reason"] == "connection_failed"
    frames = survivor[3].frames
    await wait_for(lambda: survivor[3].frames >= frames + 15, timeout=20, what="the other worker goes on")

    # The worker is started again and takes subscriptions again.
    await wait_for(lambda: conference.workers.restarts == 1 and len(conference.worker_stats()) == 2
                   and all(link.alive for link in conference.workers.links.values()), timeout=30,
                   what="the worker restarted")
    assert victim["pid"] not in {s["pid"] for s in conference.worker_stats()}
    await reader.stop()
    await pc.close()
    pc, reply, tracks = await subscribe(client, publication_id)
    again = FrameReader(tracks["video"])
    await wait_for(lambda: again.frames >= 15, timeout=60, what="frames after subscribing again")
    assert sorted(s["subscriptions"] for s in conference.worker_stats()) == [1, 1]
    await again.stop()
    await pc.close()
    for c, p, _, r in subscribers:
        await r.stop()
        await p.close()
        await c.close()
    await pub_pc.close()
    await pub_client.close()

