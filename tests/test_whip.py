"""WHIP ingest (RFC 9725, media/ingest.py, web/footage.py): an aiortc publisher speaking WHIP over
HTTP (aiohttp) on loopback publishes an incident's footage; it is archived (ffprobe), its start
and stop are on the incident's timeline; tokens are scoped, expire, are revoked, stored hashed;
every error answers as the RFC says."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import time
from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from sqlalchemy import select

from dutycall.client import new_peer_connection
from dutycall.conference import aiortc_compat
from dutycall.directory.models import utcnow
from dutycall.media.models import FootageSegment, FootageSource, IngestToken
from dutycall.media.naming import footage_room
from dutycall.synthetic import PreEncodedTrack
from dutycall.web.footage import ARCHIVE, INGEST
from dutycall.web.keys import DIRECTORY, INCIDENTS, SERVICES

from .conftest import ADMIN_PASSWORD
from .test_recording import ffprobe, incident_report
from .utils import wait_for


class Api:
    """A signed-in HTTP client (cookie and CSRF token)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # an IP address host
        self.csrf = ""

    async def sign_in(self, username: str, password: str) -> Api:
        resp = await self.session.post(f"{self.base}/api/session", json={"username": username, "password": password})
        assert resp.status == 200, await resp.text()
        self.csrf = (await resp.json())["csrf_token"]
        return self

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        resp = await self.session.request(method, f"{self.base}{path}", json=body,
                                          headers={"X-CSRF-Token": self.csrf})
        return resp.status, await resp.json()

    async def close(self) -> None:
        await self.session.close()


@pytest.fixture
async def whip(server, tmp_path):
    app = server.app
    base = f"http://127.0.0.1:{server.port}"
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    district = await directory.create_unit(admin, {"code": "D2", "name": "西区", "kind": "district",
                                                   "parent_id": admin.unit_id})
    for username, role, unit in (("hostD2", "host", district["id"]), ("officer", "duty_officer", admin.unit_id)):
        await directory.create_account(admin, {"username": username, "display_name": username, "role": role,
                                               "password": "password-1", "unit_id": unit})
    incident = await app[INCIDENTS].create(admin, incident_report())
    host = await Api(base).sign_in("admin", ADMIN_PASSWORD)
    http = aiohttp.ClientSession()
    yield {"app": app, "base": base, "incident_id": incident["id"], "host": host, "http": http, "server": server}
    await http.close()
    await host.close()


async def issue(api: Api, incident_id: int, label: str = "无人机 1", **extra: Any) -> dict[str, Any]:
    status, body = await api.call("POST", f"/api/incidents/{incident_id}/ingest-tokens", {"label": label, **extra})
    assert status == 201, body
    return body


def publisher() -> tuple[RTCPeerConnection, PreEncodedTrack]:
    pc = new_peer_connection()
    video = PreEncodedTrack(PreEncodedTrack.encode("vp8", 640, 360, 30, 700_000, 2.0))
    transceiver = pc.addTransceiver(video, direction="sendonly")
    aiortc_compat.on_keyframe_request(transceiver.sender, video.request_keyframe)
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    return pc, video


async def whip_post(http: aiohttp.ClientSession, base: str, token: str | None, sdp: str,
                    content_type: str = "application/sdp") -> aiohttp.ClientResponse:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    resp = await http.post(f"{base}/api/whip", data=sdp.encode(), headers=headers)
    await resp.read()
    return resp


async def rows(app: Any, model: Any, **where: Any) -> list[Any]:
    async with app[SERVICES].sessionmaker() as db:
        query = select(model).where(*(getattr(model, k) == v for k, v in where.items())).order_by(model.id)
        return list((await db.execute(query)).scalars())


async def timeline(api: Api, incident_id: int) -> list[dict[str, Any]]:
    status, body = await api.call("GET", f"/api/incidents/{incident_id}")
    assert status == 200
    return [e for e in body["timeline"] if e["kind"].startswith("footage_")]


async def test_a_whip_publisher_is_archived_and_its_start_and_stop_are_on_the_timeline(whip):
    app, base, http, iid = whip["app"], whip["base"], whip["http"], whip["incident_id"]
    token = (await issue(whip["host"], iid))["token"]
    pc, _ = publisher()
    try:
        await pc.setLocalDescription(await pc.createOffer())
        resp = await whip_post(http, base, token, pc.localDescription.sdp)
        assert resp.status == 201, await resp.text()
        assert resp.content_type == "application/sdp"
        location = resp.headers["Location"]
        assert location.startswith("/api/whip/sessions/") and resp.headers["ETag"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=await resp.text(), type="answer"))
        session = app[INGEST].sessions[location.rsplit("/", 1)[-1]]
        recorder = await wait_for(lambda: app[ARCHIVE].recorders.get(session.source_id))
        first_at = await wait_for(lambda: recorder.writer.first_written_at, what="the first packet archived")
        assert app[INGEST].conference.find_room(footage_room(iid)) is not None
        await wait_for(lambda: time.monotonic() - first_at >= 5.0, timeout=30)
        streamed = time.monotonic() - first_at
        # PATCH (trickle) is not supported; DELETE with another token is refused.
        patch = await http.patch(f"{base}{location}", data=b"a=end-of-candidates",
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/trickle-ice-sdpfrag"})
        assert patch.status == 405 and patch.headers["Allow"] == "DELETE"
        wrong = await http.delete(f"{base}{location}", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401
        deleted = await http.delete(f"{base}{location}", headers={"Authorization": f"Bearer {token}"})
        assert deleted.status == 200
    finally:
        await pc.close()
    again = await http.delete(f"{base}{location}", headers={"Authorization": f"Bearer {token}"})
    assert again.status == 404
    assert app[INGEST].conference.find_room(footage_room(iid)) is None, "the footage room closed with its source"

    source = (await rows(app, FootageSource, incident_id=iid))[-1]
    assert (source.kind, source.label, source.end_reason) == ("whip", "无人机 1", "deleted")
    segments = await rows(app, FootageSegment, source_id=source.id)
    assert [s.status for s in segments] == ["complete"]
    path = app[ARCHIVE].settings.directory / segments[0].path
    probe = await asyncio.to_thread(ffprobe, path)
    video = probe["streams"]["video"]
    assert probe["errors"] == "" and int(video["nb_read_frames"]) == int(video["nb_read_packets"]) > 0
    assert probe["streams"]["audio"]["codec_name"] == "opus"
    print(f"WHIP: streamed {streamed:.3f} s, archived {probe['duration']:.3f} s")
    assert abs(probe["duration"] - streamed) <= 0.5
    assert segments[0].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()

    events = await timeline(whip["host"], iid)
    assert [(e["kind"], e["actor"]) for e in events] == [("footage_started", "无人机 1"), ("footage_stopped", "无人机 1")]
    assert events[0]["source_id"] == source.id and events[1]["reason"] == "deleted"


async def test_whip_errors_answer_as_the_rfc_says(whip):
    app, base, http, iid = whip["app"], whip["base"], whip["http"], whip["incident_id"]
    issued = await issue(whip["host"], iid, minutes=5)
    token = issued["token"]
    pc, _ = publisher()
    try:
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        for bearer in (None, "", "not-a-token"):
            resp = await whip_post(http, base, bearer, offer)
            assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
        resp = await whip_post(http, base, token, offer, content_type="application/json")
        assert resp.status == 415
        for bad in ("hello", "v=0\r\nthis is not sdp", offer.replace("a=fingerprint", "a=x-fingerprint")):
            resp = await whip_post(http, base, token, bad)
            assert resp.status == 400, (bad[:20], await resp.text())
            assert "SDP" in (await resp.json())["error"]["message"]
        resp = await http.post(f"{base}/api/whip?lang=en", data=b"v=0\r\n",
                               headers={"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"})
        assert resp.status == 400 and (await resp.json())["error"]["message"].startswith("The SDP offer is not valid")
        # Expired: the same token five minutes and a second later.
        app[INGEST].clock = lambda: utcnow() + dt.timedelta(minutes=5, seconds=1)
        assert (await whip_post(http, base, token, offer)).status == 401
        app[INGEST].clock = utcnow
        assert not app[INGEST].sessions, "nothing refused was started"
        assert await rows(app, FootageSource, incident_id=iid) == []
    finally:
        await pc.close()
    unknown = await http.delete(f"{base}/api/whip/sessions/nope", headers={"Authorization": f"Bearer {token}"})
    assert unknown.status == 404
    # Only the hash is stored.
    stored = (await rows(app, IngestToken, id=issued["id"]))[0]
    assert stored.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str({c.name: getattr(stored, c.name) for c in IngestToken.__table__.columns})


async def test_revoking_a_token_ends_its_live_stream_and_refuses_it_after(whip):
    app, base, http, iid, host = whip["app"], whip["base"], whip["http"], whip["incident_id"], whip["host"]
    issued = await issue(host, iid, label="编码器")
    pc, _ = publisher()
    try:
        await pc.setLocalDescription(await pc.createOffer())
        resp = await whip_post(http, base, issued["token"], pc.localDescription.sdp)
        assert resp.status == 201
        await pc.setRemoteDescription(RTCSessionDescription(sdp=await resp.text(), type="answer"))
        source_id = next(iter(app[INGEST].sessions.values())).source_id
        await wait_for(lambda: (r := app[ARCHIVE].recorders.get(source_id)) and r.writer.written > 30)
        status, body = await host.call("DELETE", f"/api/ingest-tokens/{issued['id']}")
        assert status == 200 and body["valid"] is False and body["revoked_at"]
        assert not app[INGEST].sessions
        source = (await rows(app, FootageSource, id=source_id))[0]
        assert source.end_reason == "revoked"
        assert [s.status for s in await rows(app, FootageSegment, source_id=source_id)] == ["complete"]
        events = await timeline(host, iid)
        assert events[-1]["kind"] == "footage_stopped" and events[-1]["reason"] == "revoked"
        second = new_peer_connection()
        second.addTransceiver("video", direction="sendonly")
        await second.setLocalDescription(await second.createOffer())
        assert (await whip_post(http, base, issued["token"], second.localDescription.sdp)).status == 401
        await second.close()
        status, listed = await host.call("GET", f"/api/incidents/{iid}/ingest-tokens")
        assert status == 200 and [t["id"] for t in listed] == [issued["id"]] and "token" not in listed[0]
    finally:
        await pc.close()


async def test_a_publisher_that_goes_away_ends_its_session_by_itself(whip):
    app, base, http, iid = whip["app"], whip["base"], whip["http"], whip["incident_id"]
    token = (await issue(whip["host"], iid))["token"]
    pc, video = publisher()
    await pc.setLocalDescription(await pc.createOffer())
    resp = await whip_post(http, base, token, pc.localDescription.sdp)
    assert resp.status == 201
    await pc.setRemoteDescription(RTCSessionDescription(sdp=await resp.text(), type="answer"))
    source_id = next(iter(app[INGEST].sessions.values())).source_id
    await wait_for(lambda: (r := app[ARCHIVE].recorders.get(source_id)) and r.writer.written > 30)
    video.pause()  # the drone's link drops: no more media, no DELETE
    for sender in pc.getSenders():
        if sender.track is not None and sender.track.kind == "audio":
            sender.track.stop()
    await wait_for(lambda: not app[INGEST].sessions, timeout=20, what="the session ended by the media timeout")
    source = await wait_for(lambda: _ended(app, source_id))
    assert source.end_reason in ("media_timeout", "connection_failed", "connection_closed")
    assert [s.status for s in await rows(app, FootageSegment, source_id=source_id)] == ["complete"]
    await pc.close()


async def _ended(app: Any, source_id: int) -> FootageSource | None:
    source = (await rows(app, FootageSource, id=source_id))[0]
    return source if source.ended_at is not None else None


async def test_tokens_are_issued_only_by_hosts_whose_scope_holds_the_incident(whip):
    base, iid = whip["base"], whip["incident_id"]
    other_district = await Api(base).sign_in("hostD2", "password-1")
    officer = await Api(base).sign_in("officer", "password-1")
    try:
        status, body = await other_district.call("POST", f"/api/incidents/{iid}/ingest-tokens", {"label": "x"})
        assert status == 404 and body["error"]["code"] == "not_found"
        assert (await other_district.call("GET", f"/api/incidents/{iid}/ingest-tokens"))[0] == 404
        status, body = await officer.call("POST", f"/api/incidents/{iid}/ingest-tokens", {"label": "x"})
        assert status == 403
        issued = await issue(whip["host"], iid)
        assert (await other_district.call("DELETE", f"/api/ingest-tokens/{issued['id']}"))[0] == 404
        for bad in ({"label": ""}, {"label": "a\u202eb"}, {"label": "x" * 65}, {"label": "x", "minutes": 1},
                    {"label": "x", "minutes": True}, {"label": "x", "minutes": 10081}):
            status, body = await whip["host"].call("POST", f"/api/incidents/{iid}/ingest-tokens", bad)
            assert status == 422, bad
        assert (await whip["host"].call("POST", "/api/incidents/99999/ingest-tokens", {"label": "x"}))[0] == 404
    finally:
        await other_district.close()
        await officer.close()
