"""RTSP pull (media/rtsp.py, web/rtsp.py) against an independent camera: GStreamer's RTSP server
(tests/gst_rtsp_server.py, run with Debian's Python) on loopback, x264 with four slices a frame and
an odd GOP. A subscriber in the incident's footage room decodes every frame it gets; the camera goes
away (SIGKILL) and comes back on the same port; the source retries and goes live again by itself;
DELETE stops it; sources resume after a server restart; bad URLs, credentials and scope."""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import socket
import subprocess
import sys
from typing import Any

import av
import pytest
from aiortc.mediastreams import MediaStreamError

from dutycall.client import subscribe
from dutycall.incidents.models import Incident
from dutycall.media.models import FootageSegment, FootageSource, RtspSource
from dutycall.media.naming import footage_room
from dutycall.media.rtsp import AccessUnits, BadUrl, RtspPulls, check_url, mask_url, nal_types
from dutycall.web.footage import ARCHIVE
from dutycall.web.keys import DIRECTORY, INCIDENTS, SERVICES
from dutycall.web.rtsp import RTSP

from .conftest import ADMIN_PASSWORD
from .test_recording import ffprobe, incident_report
from .test_whip import Api, rows
from .utils import signalling, wait_for

SERVER_SCRIPT = pathlib.Path(__file__).with_name("gst_rtsp_server.py")
GST_PYTHON = "/usr/bin/python3"
USER, PASSWORD = "camuser", "s3cret-Pa55"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Camera:
    """The GStreamer RTSP server in a subprocess; killed and started again on the same port."""

    def __init__(self, port: int, path: str = "cam", audio: bool = True) -> None:
        self.port = port
        self.path = path
        self.audio = audio  # a camera with a microphone: its audio is not pulled, and must not get in the way
        self.process: subprocess.Popen[str] | None = None

    async def start(self) -> None:
        assert os.path.exists(GST_PYTHON), "Debian's python3 with gi (GStreamer) is required"
        self.process = subprocess.Popen(
            [GST_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--path", self.path,
             "--user", USER, "--password", PASSWORD, *(["--audio"] if self.audio else [])],
            stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
        assert self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), 60)
        assert line.startswith("READY"), line

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    @property
    def url(self) -> str:
        return f"rtsp://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{self.path}"


@pytest.fixture
async def rtsp(server):
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
    camera = Camera(free_port())
    yield {"app": app, "base": base, "incident_id": incident["id"], "host": host, "server": server,
           "camera": camera, "ws_url": f"ws://127.0.0.1:{server.port}/ws"}
    camera.kill()
    await host.close()


async def listed(api: Api, incident_id: int) -> list[dict[str, Any]]:
    status, body = await api.call("GET", f"/api/incidents/{incident_id}/rtsp-sources")
    assert status == 200, body
    return list(body)


async def state_of(api: Api, incident_id: int, source_id: int, state: str) -> dict[str, Any] | None:
    found = next(s for s in await listed(api, incident_id) if s["id"] == source_id)
    return found if found["state"] == state else None


async def footage_events(api: Api, incident_id: int) -> list[dict[str, Any]]:
    status, body = await api.call("GET", f"/api/incidents/{incident_id}")
    assert status == 200
    return [e for e in body["timeline"] if e["kind"].startswith("footage_")]


async def watch(ws_url: str, room: str, publication_id: str, frames: int) -> dict[str, Any]:
    """Join the footage room, subscribe to ``publication_id`` (encoded packets) and decode ``frames``
    of them with FFmpeg's H264 decoder: every one must give a picture, without an error."""
    client = await signalling(ws_url).connect()
    pc = None
    try:
        await client.join(room, "值班员")
        pc, _, tracks = await subscribe(client, publication_id, ("video",), passthrough=True)
        decoder: Any = av.CodecContext.create("h264", "r")
        got: dict[str, Any] = {"packets": 0, "decoded": 0, "keyframes": 0, "multi_slice": 0, "size": None,
                               "gops": []}
        since_key = 0
        while got["packets"] < frames:
            try:
                packet = await asyncio.wait_for(tracks["video"].recv(), 30)
            except MediaStreamError:
                break
            data = bytes(packet)
            types = nal_types(data)
            if got["packets"] == 0:
                assert 5 in types, "a subscriber starts at a keyframe"
            got["packets"] += 1
            if 5 in types:
                got["keyframes"] += 1
                if got["keyframes"] > 1:
                    got["gops"].append(since_key)
                since_key = 0
            since_key += 1
            if sum(1 for t in types if t in (1, 5)) > 1:
                got["multi_slice"] += 1
            pictures = decoder.decode(av.Packet(data))  # raises on a broken frame
            assert len(pictures) == 1, f"packet {got['packets']} gave {len(pictures)} pictures"
            got["decoded"] += 1
            got["size"] = (pictures[0].width, pictures[0].height)
        return got
    finally:
        if pc is not None:
            await pc.close()
        await client.close()


async def test_an_rtsp_camera_is_pulled_survives_going_away_and_stops_on_delete(rtsp):
    app, host, iid, camera = rtsp["app"], rtsp["host"], rtsp["incident_id"], rtsp["camera"]
    await camera.start()
    status, added = await host.call("POST", f"/api/incidents/{iid}/rtsp-sources",
                                    {"url": camera.url, "label": "东湖路口 1 号枪机"})
    assert status == 201, added
    source_id = added["id"]
    assert added["url"] == f"rtsp://***@127.0.0.1:{camera.port}/cam"
    assert PASSWORD not in str(added) and USER not in str(added)
    stored = (await rows(app, RtspSource, id=source_id))[0]
    assert stored.url == camera.url, "the credentials are kept to pull with"

    live = await wait_for(lambda: state_of(host, iid, source_id, "live"), timeout=60, what="live")
    assert live["publication_id"] and live["footage_source_id"] and live["next_attempt_at"] is None
    got = await watch(rtsp["ws_url"], footage_room(iid), live["publication_id"], 120)
    print(f"RTSP first connection: {got}")
    assert got["decoded"] == got["packets"] == 120 and got["size"] == (320, 240)
    assert got["multi_slice"] >= 100, "the camera's frames come in several slices"
    assert got["keyframes"] >= 3 and len(set(got["gops"])) > 1, "keyframes at irregular intervals"

    camera.kill()  # the camera goes away
    retrying = await wait_for(lambda: state_of(host, iid, source_id, "retrying"), timeout=60, what="retrying")
    assert retrying["next_attempt_at"] and retrying["publication_id"] is None
    events = await footage_events(host, iid)
    assert [(e["kind"], e.get("reason")) for e in events] == [("footage_started", None),
                                                              ("footage_stopped", "camera_lost")]
    assert events[0]["source_kind"] == "rtsp" and events[0]["video"] == "H264"
    assert app[RTSP].conference.find_room(footage_room(iid)) is None, "nothing is published while it is gone"

    await camera.start()  # back on the same port
    again = await wait_for(lambda: state_of(host, iid, source_id, "live"), timeout=90, what="live again")
    assert again["publication_id"] != live["publication_id"]
    got = await watch(rtsp["ws_url"], footage_room(iid), again["publication_id"], 60)
    print(f"RTSP after the camera came back: {got}")
    assert got["decoded"] == got["packets"] == 60

    status, stopped = await host.call("DELETE", f"/api/rtsp-sources/{source_id}")
    assert status == 200 and stopped["state"] == "stopped" and stopped["stopped_at"]
    assert PASSWORD not in str(stopped)
    assert (await listed(host, iid))[0]["state"] == "stopped"
    assert app[RTSP].conference.find_room(footage_room(iid)) is None
    assert not app[RTSP].pulls
    events = await footage_events(host, iid)
    assert [(e["kind"], e.get("reason")) for e in events][2:] == [("footage_started", None),
                                                                 ("footage_stopped", "stopped")]
    sources = await rows(app, FootageSource, incident_id=iid)
    assert [(s.kind, s.end_reason) for s in sources] == [("rtsp", "camera_lost"), ("rtsp", "stopped")]
    # Both connections archived as they came (H264 in fragmented MP4): every frame decodes.
    for source in sources:
        segments = await wait_for(lambda s=source: _complete(app, s.id), what="segments closed and hashed")
        for segment in segments:
            probe = await asyncio.to_thread(ffprobe, app[ARCHIVE].settings.directory / segment.path)
            video = probe["streams"]["video"]
            assert probe["errors"] == "" and video["codec_name"] == "h264", probe
            assert int(video["nb_read_frames"]) == int(video["nb_read_packets"]) > 0, probe
            assert (video["width"], video["height"]) == (320, 240)
    assert (await rows(app, RtspSource, id=source_id))[0].state == "stopped"
    # Stopping again is harmless; it stays stopped.
    assert (await host.call("DELETE", f"/api/rtsp-sources/{source_id}"))[1]["state"] == "stopped"


async def _complete(app: Any, source_id: int) -> list[FootageSegment] | None:
    segments = await rows(app, FootageSegment, source_id=source_id)
    return segments if segments and all(s.status == "complete" for s in segments) else None


async def test_sources_not_stopped_resume_when_the_server_starts_again(rtsp):
    app, host, iid, camera = rtsp["app"], rtsp["host"], rtsp["incident_id"], rtsp["camera"]
    status, added = await host.call("POST", f"/api/incidents/{iid}/rtsp-sources",
                                    {"url": camera.url, "label": "无人机"})
    assert status == 201
    # Nothing listens yet: it retries, and says why without the credentials.
    retrying = await wait_for(lambda: state_of(host, iid, added["id"], "retrying"), timeout=60)
    assert retrying["last_error"] and PASSWORD not in retrying["last_error"]
    pulls = app[RTSP]
    await pulls.close()  # the server stops
    assert (await rows(app, RtspSource, id=added["id"]))[0].state == "retrying"
    restarted = RtspPulls(pulls.sessionmaker, pulls.conference, app[ARCHIVE])
    try:
        assert await restarted.resume() == [added["id"]]
        await camera.start()
        await wait_for(lambda: (p := restarted.pulls.get(added["id"])) and p.state == "live", timeout=90,
                       what="live after the restart")
    finally:
        await restarted.close()
    assert (await rows(app, RtspSource, id=added["id"]))[0].state != "stopped", "a server stop is not a DELETE"


async def test_bad_urls_labels_and_scope(rtsp):
    base, host, iid = rtsp["base"], rtsp["host"], rtsp["incident_id"]
    path = f"/api/incidents/{iid}/rtsp-sources"
    for url in ("http://127.0.0.1/cam", "file:///etc/passwd", "rtsp://", "rtsp:///cam", "rtsp://:554/cam",
                "rtsp://host:99999/cam", "rtsp://host/ca m", "rtsp://host/cam\t", "rtsp:host/cam",
                "rtspx://host/cam", "", None, 5, "rtsp://h/" + "x" * 1100):
        status, body = await host.call("POST", path, {"url": url, "label": "x"})
        assert status == 400, (url, body)
        assert body["error"]["code"] == "invalid_url"
    for label in ("", "  ", "x" * 65, "a\u202eb", None):
        status, _ = await host.call("POST", path, {"url": "rtsp://127.0.0.1:9/cam", "label": label})
        assert status == 422, label
    assert (await host.call("POST", "/api/incidents/99999/rtsp-sources",
                            {"url": "rtsp://127.0.0.1:9/cam", "label": "x"}))[0] == 404
    assert await listed(host, iid) == []

    status, added = await host.call("POST", path, {"url": "rtsps://admin:pw@127.0.0.1:9/live?token=abc",
                                                   "label": "平台"})
    assert status == 201 and added["url"] == "rtsps://***@127.0.0.1:9/live?***"
    other_district = await Api(base).sign_in("hostD2", "password-1")
    officer = await Api(base).sign_in("officer", "password-1")
    try:
        assert (await other_district.call("POST", path, {"url": "rtsp://127.0.0.1:9/cam", "label": "x"}))[0] == 404
        assert (await other_district.call("GET", path))[0] == 404
        assert (await other_district.call("DELETE", f"/api/rtsp-sources/{added['id']}"))[0] == 404
        assert (await officer.call("POST", path, {"url": "rtsp://127.0.0.1:9/cam", "label": "x"}))[0] == 403
        assert (await officer.call("DELETE", f"/api/rtsp-sources/{added['id']}"))[0] == 403
    finally:
        await other_district.close()
        await officer.close()
    assert (await host.call("DELETE", "/api/rtsp-sources/99999"))[0] == 404
    listing = await listed(host, iid)
    assert "pw" not in str([s["url"] for s in listing]) and "abc" not in str(listing)
    assert (await host.call("DELETE", f"/api/rtsp-sources/{added['id']}"))[0] == 200


def test_urls_are_checked_and_masked():
    assert check_url("rtsp://cam.example/stream1") == "rtsp://cam.example/stream1"
    assert check_url("RTSPS://u:p@[::1]:322/s") == "RTSPS://u:p@[::1]:322/s"
    with pytest.raises(BadUrl):
        check_url("rtsp://u:p@/s")
    assert mask_url("rtsp://u:p@cam:554/a/b") == "rtsp://***@cam:554/a/b"
    assert mask_url("rtsp://cam/a") == "rtsp://cam/a"
    assert mask_url("rtsp://u@[::1]:554/a?user=x&password=y") == "rtsp://***@[::1]:554/a?***"


def test_packets_sharing_a_timestamp_make_one_frame_and_keyframes_get_their_parameter_sets():
    sps_pps = b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x68\xce"
    units = AccessUnits(sps_pps)
    idr1, idr2 = b"\x00\x00\x00\x01\x65\x88", b"\x00\x00\x01\x65\x99"
    assert units.add(idr1, None) is None  # no timestamp yet: it belongs to the next packet's frame
    assert units.add(idr2, 3600) is None
    p1, p2 = b"\x00\x00\x00\x01\x41\x9a", b"\x00\x00\x01\x41\x9b"
    first = units.add(p1, 7200)
    assert first is not None and first.keyframe and first.pts == 3600
    assert first.data == sps_pps + idr1 + idr2 and nal_types(first.data) == [7, 8, 5, 5]
    assert units.add(p2, 7200) is None
    second = units.flush()
    assert second is not None and not second.keyframe and second.data == p1 + p2 and second.pts == 7200


async def test_back_off_doubles_to_its_limit_and_the_url_never_reaches_the_log(rtsp, caplog):
    app, host, iid = rtsp["app"], rtsp["host"], rtsp["incident_id"]
    pulls = app[RTSP]
    pulls.backoff = (0.2, 0.8, 60.0)
    delays: list[float] = []
    port = free_port()  # nothing listens there
    status, added = await host.call("POST", f"/api/incidents/{iid}/rtsp-sources",
                                    {"url": f"rtsp://who:{PASSWORD}@127.0.0.1:{port}/x", "label": "x"})
    assert status == 201
    pull = pulls.pulls[added["id"]]
    seen: list[Any] = []

    def retried() -> bool:
        if pull.state == "retrying" and pull.next_attempt_at not in seen:
            seen.append(pull.next_attempt_at)
            delays.append((pull.next_attempt_at - pulls.clock()).total_seconds())
        return len(seen) >= 5

    await wait_for(retried, timeout=60, interval=0.01)
    assert delays[0] <= 0.25 and 0.3 <= delays[2] <= 0.85 and all(d <= 0.85 for d in delays), delays
    assert (await host.call("DELETE", f"/api/rtsp-sources/{added['id']}"))[0] == 200
    assert PASSWORD not in caplog.text and "who:" not in caplog.text


async def test_closing_the_incident_stops_its_sources(rtsp):
    app, host, iid = rtsp["app"], rtsp["host"], rtsp["incident_id"]
    app[RTSP].backoff = (0.2, 0.4, 60.0)
    status, added = await host.call("POST", f"/api/incidents/{iid}/rtsp-sources",
                                    {"url": f"rtsp://127.0.0.1:{free_port()}/x", "label": "x"})
    assert status == 201
    await wait_for(lambda: state_of(host, iid, added["id"], "retrying"), timeout=60)
    async with app[SERVICES].sessionmaker.begin() as db:  # closed (its final report and close are the incidents' tests)
        (await db.get(Incident, iid)).status = "closed"
    await wait_for(lambda: state_of(host, iid, added["id"], "stopped"), timeout=60, what="stopped by the close")
    assert not app[RTSP].pulls
    status, _ = await host.call("POST", f"/api/incidents/{iid}/rtsp-sources",
                                {"url": "rtsp://127.0.0.1:9/x", "label": "y"})
    assert status == 403
