"""Bad client input gets an error reply, changes nothing, and never stops anyone's media."""

from __future__ import annotations

import json

import pytest

from dutycall.client import SignallingClient, SignallingError, new_peer_connection, publish, subscribe
from dutycall.synthetic import EncodedColorTrack

from .utils import FrameReader, signalling, wait_for

GREEN = (30, 200, 40)


async def _next_error(client: SignallingClient, count: int) -> dict:
    await wait_for(lambda: len(client.errors) >= count, timeout=10, what="error reply")
    return client.errors[count - 1]


async def _recvonly_offer(kinds=("video",)) -> str:
    pc = new_peer_connection()
    for kind in kinds:
        pc.addTransceiver(kind, direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def _sendonly_offer() -> str:
    pc = new_peer_connection()
    pc.addTransceiver(EncodedColorTrack(GREEN), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def test_malformed_messages_get_errors_while_media_flows(ws_url, server):
    pub_client = await signalling(ws_url).connect()
    await pub_client.join("bad", "publisher")
    pub_pc, published = await publish(pub_client, video=EncodedColorTrack(GREEN))
    sub_client = await signalling(ws_url).connect()
    await sub_client.join("bad", "viewer")
    sub_pc, _, tracks = await subscribe(sub_client, published["publication_id"])
    reader = FrameReader(tracks["video"])
    await wait_for(lambda: reader.frames >= 10, timeout=30)
    room = server.conference.rooms["bad"]
    state_before = room.snapshot()

    raw_cases = [
        ("{not json", "invalid_request"),
        ("[1, 2, 3]", "invalid_request"),
        ('"just a string"', "invalid_request"),
        (json.dumps({"type": "no_such_thing"}), "invalid_request"),
        (json.dumps({"id": 1}), "invalid_request"),
        (json.dumps({"type": "join", "room": "other", "name": "again"}), "invalid_state"),
        (json.dumps({"type": "publish", "sdp": 42}), "invalid_sdp"),
        (json.dumps({"type": "publish", "sdp": "v=0\r\nthis is not sdp\r\nm=video x"}), "invalid_sdp"),
        (json.dumps({"type": "subscribe", "publication_id": "pub_nope", "sdp": "v=0"}), "not_found"),
        (json.dumps({"type": "subscribe", "publication_id": ["x"], "sdp": "v=0"}), "not_found"),
        (json.dumps({"type": "unsubscribe", "subscription_id": {"a": 1}}), "invalid_request"),
        (json.dumps({"type": "unpublish", "publication_id": published["publication_id"]}), "not_found"),
        (json.dumps({"type": "publish", "sdp": "v=0", "video_codec": "VP9"}), "invalid_request"),
        ("[" * 100000 + "]" * 100000, "invalid_request"),
        (json.dumps({"type": "ping", "pad": "x" * 200_000}), "invalid_request"),
    ]
    for i, (text, code) in enumerate(raw_cases, start=1):
        await sub_client.send_raw(text)
        error = await _next_error(sub_client, i)
        assert error["code"] == code, (text[:80], error)
        assert error["message"]
    await sub_client.send_raw(b"\x00\x01binary")
    error = await _next_error(sub_client, len(raw_cases) + 1)
    assert error["code"] == "invalid_request"

    # SDP that parses but cannot be used.
    recvonly = await _recvonly_offer()
    with pytest.raises(SignallingError) as info:
        await sub_client.request("publish", sdp=recvonly)
    assert info.value.code == "invalid_sdp"
    sendonly = await _sendonly_offer()
    vp9_only = sendonly.replace("VP8/90000", "VP9/90000").replace("H264/90000", "VP9/90000")
    with pytest.raises(SignallingError) as info:
        await sub_client.request("publish", sdp=vp9_only)
    assert info.value.code == "unsupported_codec"
    assert "vp9" in info.value.reply["message"].lower()
    with pytest.raises(SignallingError) as info:
        await sub_client.request("subscribe", publication_id=published["publication_id"], sdp=sendonly)
    assert info.value.code == "invalid_sdp"
    audio_only = await _recvonly_offer(("audio",))
    with pytest.raises(SignallingError) as info:
        await sub_client.request("subscribe", publication_id=published["publication_id"], sdp=audio_only)
    assert info.value.code == "invalid_sdp" and "没有 audio" in info.value.reply["message"]  # Chinese by default
    no_fingerprint = "\r\n".join(line for line in sendonly.splitlines() if not line.startswith("a=fingerprint"))
    with pytest.raises(SignallingError) as info:
        await sub_client.request("publish", sdp=no_fingerprint)
    assert info.value.code == "invalid_sdp"

    # Requests before joining are refused.
    stranger = await signalling(ws_url).connect()
    with pytest.raises(SignallingError) as info:
        await stranger.request("publish", sdp=sendonly)
    assert info.value.code == "invalid_state"
    for bad_join in ({"room": "../etc"}, {"room": ""}, {"room": "x" * 65}, {"room": ["list"]}):
        with pytest.raises(SignallingError) as info:
            await stranger.request("join", **bad_join)
        assert info.value.code == "invalid_request"
    await stranger.close()

    # Nothing changed, nothing leaked, and media kept flowing throughout.
    assert room.snapshot() == state_before
    assert server.conference.stats()["subscriptions"] == 1
    frames = reader.frames
    await wait_for(lambda: reader.frames >= frames + 30, timeout=20, what="media still flowing")
    assert (await sub_client.request("ping"))["type"] == "pong"

    await reader.stop()
    for pc in (sub_pc, pub_pc):
        await pc.close()
    for c in (sub_client, pub_client):
        await c.close()


async def test_signalling_needs_a_signed_in_session_from_our_own_origin(ws_url, server):
    import aiohttp

    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(ws_url)
        assert info.value.status == 401
    async with aiohttp.ClientSession(cookies=server.cookies) as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(ws_url, origin="http://evil.example")
        assert info.value.status == 403
        ws = await session.ws_connect(ws_url, origin=f"http://127.0.0.1:{server.port}")
        await ws.close()


async def test_a_console_joins_as_its_duty_room(ws_url, server):
    from dutycall.client import sign_in
    from dutycall.web.auth import DIRECTORY

    directory = server.app[DIRECTORY]
    _, admin = await directory.sign_in("admin", "admin-password-1")
    room = await directory.create_room(admin, {"unit_id": admin.unit_id, "name": "市总值班室"})
    credential = await directory.create_device_credential(admin, room["id"])
    cookies = await sign_in(f"http://127.0.0.1:{server.port}", device_token=credential["token"])
    console = await SignallingClient(ws_url, cookies=cookies).connect()
    # A console never enters a free-form room; it waits in its duty room's standby room.
    with pytest.raises(SignallingError) as info:
        await console.request("join", room="duty")
    assert info.value.code == "not_found"
    standby = f"standby-{room['id']}"
    joined = await console.request("join", room=standby, name="I am someone else")
    assert joined["name"] == "市总值班室"
    watcher = await signalling(ws_url).connect()
    watched = await watcher.join(standby, "admin")
    assert {"participant_id": joined["participant_id"], "name": "市总值班室",
            "duty_room_id": room["id"]} in watched["participants"]
    await console.close()
    await watcher.close()
