"""WHEP (media/whep.py, web/footage.py): a player POSTs a recvonly offer to watch a live footage
source and gets the source's media forwarded; scope, errors, the end of a viewing and its audit."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription

from dutycall.client import new_peer_connection
from dutycall.media.models import FootageAccess
from dutycall.media.naming import footage_room
from dutycall.web.footage import INGEST, WHEP

from .test_gst_whip import own_recordings  # noqa: F401  (a fixture)
from .test_whip import Api, issue, publisher, rows, timeline, whip, whip_post  # noqa: F401  (whip: a fixture)
from .utils import FrameReader, wait_for


async def live_source(whip: dict[str, Any]) -> tuple[RTCPeerConnection, int, str, str]:
    """An aiortc WHIP publisher (VP8 + Opus) live for the incident: its connection, source id,
    Location and token."""
    token = (await issue(whip["host"], whip["incident_id"], label="无人机 1"))["token"]
    pc, _ = publisher()
    await pc.setLocalDescription(await pc.createOffer())
    resp = await whip_post(whip["http"], whip["base"], token, pc.localDescription.sdp)
    assert resp.status == 201, await resp.text()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=await resp.text(), type="answer"))
    session = whip["app"][INGEST].sessions[resp.headers["Location"].rsplit("/", 1)[-1]]
    await wait_for(lambda: session.publication.is_live("video"), what="the source's video flowing")
    return pc, session.source_id, resp.headers["Location"], token


async def player_offer(kinds: tuple[str, ...] = ("video", "audio")) -> RTCPeerConnection:
    pc = new_peer_connection()
    for kind in kinds:
        pc.addTransceiver(kind, direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc


async def whep_post(api: Api, path: str, sdp: str, content_type: str = "application/sdp",
                    csrf: bool = True) -> aiohttp.ClientResponse:
    headers = {"Content-Type": content_type, **({"X-CSRF-Token": api.csrf} if csrf else {})}
    resp = await api.session.post(f"{api.base}{path}", data=sdp.encode(), headers=headers)
    await resp.read()
    return resp


async def test_a_whep_player_receives_and_decodes_a_live_source_and_is_audited(whip, own_recordings):
    app, iid, host = whip["app"], whip["incident_id"], whip["host"]
    source_pc, source_id, _, _ = await live_source(whip)
    player = await player_offer()
    try:
        resp = await whep_post(host, f"/api/whep/{source_id}", player.localDescription.sdp)
        assert resp.status == 201, await resp.text()
        assert resp.content_type == "application/sdp" and resp.headers["ETag"]
        location = resp.headers["Location"]
        assert location.startswith("/api/whep/sessions/")
        await player.setRemoteDescription(RTCSessionDescription(sdp=await resp.text(), type="answer"))
        tracks = {t.receiver.track.kind: t.receiver.track for t in player.getTransceivers()}
        video, audio = FrameReader(tracks["video"]), FrameReader(tracks["audio"])
        await wait_for(lambda: video.frames >= 60 and audio.frames >= 50, timeout=30,
                       what="60 decoded video frames and 50 audio frames")
        print(f"WHEP: {video.frames} video frames decoded at {video.size}, {audio.frames} audio frames, "
              f"{video.frames / (video.last_frame_at - video.first_frame_at):.1f} fps")
        assert video.size == (640, 360)
        viewing = app[WHEP].viewings[location.rsplit("/", 1)[-1]]
        assert viewing.source_id == source_id
        patch = await host.session.patch(f"{host.base}{location}", data=b"a=end-of-candidates",
                                         headers={"X-CSRF-Token": host.csrf,
                                                  "Content-Type": "application/trickle-ice-sdpfrag"})
        assert patch.status == 405 and patch.headers["Allow"] == "DELETE"
        other = await Api(host.base).sign_in("hostD2", "password-1")
        try:
            resp = await other.session.delete(f"{host.base}{location}", headers={"X-CSRF-Token": other.csrf})
            assert resp.status == 404, "only the account that watches ends its viewing"
        finally:
            await other.close()
        resp = await host.session.delete(f"{host.base}{location}", headers={"X-CSRF-Token": host.csrf})
        assert resp.status == 200
        assert not app[WHEP].viewings
        await video.stop()
        await audio.stop()
    finally:
        await player.close()
        await source_pc.close()
    resp = await host.session.delete(f"{host.base}{location}", headers={"X-CSRF-Token": host.csrf})
    assert resp.status == 404
    # Audited: the access record (who, which source, from where, when it started), and the
    # timeline (who, which source, when it started, how long, why it ended).
    access = await rows(app, FootageAccess, incident_id=iid, action="watched_live")
    assert [(a.source_id, a.principal_kind, a.who, a.client_address) for a in access] == [
        (source_id, "account", "系统管理员", "127.0.0.1")] and access[0].account_id is not None
    watched = [e for e in await timeline(host, iid) if e["kind"] == "footage_watched"]
    assert len(watched) == 1 and watched[0]["source_id"] == source_id and watched[0]["reason"] == "deleted"
    assert watched[0]["actor"] == "系统管理员" and watched[0]["account_id"] == access[0].account_id
    assert watched[0]["via"] == "whep" and watched[0]["seconds"] > 0 and watched[0]["started_at"]


async def test_whep_refuses_what_it_should(whip, own_recordings):
    app, base, iid, host = whip["app"], whip["base"], whip["incident_id"], whip["host"]
    source_pc, source_id, _, _ = await live_source(whip)
    player = await player_offer()
    other = await Api(base).sign_in("hostD2", "password-1")
    try:
        offer = player.localDescription.sdp
        # Not signed in; signed in without the CSRF token.
        async with aiohttp.ClientSession() as anonymous:
            resp = await anonymous.post(f"{base}/api/whep/{source_id}", data=offer.encode(),
                                        headers={"Content-Type": "application/sdp"})
            assert resp.status == 401
        assert (await whep_post(host, f"/api/whep/{source_id}", offer, csrf=False)).status == 403
        # Out of scope, unknown, malformed: all the same 404.
        for who, path in ((other, f"/api/whep/{source_id}"), (host, "/api/whep/99999"), (host, "/api/whep/x1")):
            resp = await whep_post(who, path, offer)
            assert resp.status == 404, (path, await resp.text())
        assert (await whep_post(host, f"/api/whep/{source_id}", offer, "application/json")).status == 415
        sendonly = new_peer_connection()
        sendonly.addTransceiver("video", direction="sendonly")
        await sendonly.setLocalDescription(await sendonly.createOffer())
        for bad in ("hello", "v=0\r\nnot sdp", sendonly.localDescription.sdp,
                    offer.replace("a=fingerprint", "a=x-fingerprint")):
            resp = await whep_post(host, f"/api/whep/{source_id}", bad)
            assert resp.status == 400, (bad[:20], await resp.text())
            assert "SDP" in (await resp.json())["error"]["message"]
        await sendonly.close()
        assert not app[WHEP].viewings
        assert await rows(app, FootageAccess, incident_id=iid, source_id=source_id) == [], "nothing refused audited"
    finally:
        await other.close()
        await player.close()
        await source_pc.close()
    # A source that is no longer live.
    await wait_for(lambda: not app[INGEST].sessions, timeout=20, what="the source ended")
    late = await player_offer(("video",))
    try:
        resp = await whep_post(host, f"/api/whep/{source_id}", late.localDescription.sdp)
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    finally:
        await late.close()


async def test_a_viewing_ends_when_its_source_stops(whip, own_recordings):
    app, base, iid, host = whip["app"], whip["base"], whip["incident_id"], whip["host"]
    source_pc, source_id, location, token = await live_source(whip)
    player = await player_offer(("video",))
    try:
        resp = await whep_post(host, f"/api/whep/{source_id}", player.localDescription.sdp)
        assert resp.status == 201
        await player.setRemoteDescription(RTCSessionDescription(sdp=await resp.text(), type="answer"))
        reader = FrameReader(player.getTransceivers()[0].receiver.track)
        await wait_for(lambda: reader.frames >= 10, what="frames")
        deleted = await whip["http"].delete(f"{base}{location}", headers={"Authorization": f"Bearer {token}"})
        assert deleted.status == 200
        await wait_for(lambda: not app[WHEP].viewings, what="the viewing ended with its source")
        await reader.stop()
    finally:
        await player.close()
        await source_pc.close()
    watched = await wait_for(lambda: _watched(host, iid))
    assert watched[0]["reason"] == "source_ended" and watched[0]["actor"] == "系统管理员"
    assert app[INGEST].conference.find_room(footage_room(iid)) is None, "the room closed with its last participant"


async def _watched(host: Api, incident_id: int) -> list[dict[str, Any]]:
    return [e for e in await timeline(host, incident_id) if e["kind"] == "footage_watched"]
