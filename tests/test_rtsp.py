"""RTSP pull (media/rtsp.py, web/rtsp.py) against an independent camera: GStreamer's RTSP server
(tests/gst_rtsp_server.py, run with Debian's Python) on loopback, x264 with four slices a frame and
an odd GOP. A subscriber in the incident's footage room decodes every frame it gets; the camera goes
away (SIGKILL) and comes back on the same port; the source retries and goes live again by itself;
DELETE stops it; sources resume after a server restart; bad URLs, credentials and scope."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import av
import pytest
from aiortc.mediastreams import MediaStreamError

from dutycall.client import subscribe
from dutycall.config import Config, add_arguments, from_args
from dutycall.incidents.models import Incident
from dutycall.media import rtsp as rtsp_module
from dutycall.media.models import FootageSegment, FootageSource, RtspSource
from dutycall.media.naming import footage_room
from dutycall.media.rtsp import (
    MAX_PART_BYTES,
    MAX_PARTS,
    AccessUnits,
    AllowPolicy,
    BadUrl,
    NotAllowed,
    Puller,
    RtspPulls,
    check_url,
    error_kind,
    mask_url,
    nal_types,
    parse_allow,
    pin,
)
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
LOOPBACK = "127.0.0.0/8:*"


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
    # The test cameras listen on loopback at any port: listed explicitly (never in the default).
    app[RTSP].policy = AllowPolicy(LOOPBACK)
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
    assert retrying["last_error"] == "unreachable", "coarse: not FFmpeg's words (a port scanner)"
    pulls = app[RTSP]
    await pulls.close()  # the server stops
    assert (await rows(app, RtspSource, id=added["id"]))[0].state == "retrying"
    restarted = RtspPulls(pulls.sessionmaker, pulls.conference, app[ARCHIVE], policy=AllowPolicy(LOOPBACK))
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
                "rtspx://host/cam", "", None, 5, "rtsp://h/" + "x" * 1100, "rtsp://admin:123#456@cam/s",
                "rtsp://host/cam#x"):
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
        # Out of scope is 404 before anything about the URL's host is said (or looked up).
        assert (await other_district.call("POST", path, {"url": "rtsp://169.254.169.254/x", "label": "x"}))[0] == 404
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
    # A '#' would split the password for the masking (it showed rtsp://admin:123).
    for url in ("rtsp://admin:123#456@cam/s", "rtsp://host/cam#x", "rtsp://host/cam\x7f", "rtsp://host/c\u0085am",
                "rtsp://host/c\u3000am", "rtsp://u:p\x00@host/"):
        with pytest.raises(BadUrl):
            check_url(url)
    # Credentials in the path, as some cameras take them.
    assert mask_url("rtsp://host/user=admin&password=S3cret&channel=1") == \
        "rtsp://host/user=***&password=***&channel=1"
    assert mask_url("rtsp://host/live;username=admin;pwd=S3cret") == "rtsp://host/live;username=***;pwd=***"
    assert mask_url("rtsp://10.0.0.5:554/user=admin_password=tlJwpbo6_channel=1_stream=0.sdp") == \
        "rtsp://10.0.0.5:554/user=***_password=***_channel=1_stream=0.sdp"
    assert mask_url("rtsp://h/a/PassWord=S3cret/b") == "rtsp://h/a/PassWord=***/b"
    for url in ("rtsp://host/user=admin&password=S3cret&channel=1", "rtsp://h/x;passwd=S3cret"):
        assert "S3cret" not in mask_url(url)
        assert "S3cret" not in rtsp_module._error_text(ValueError(f"bad {url}"), url)


def test_the_allow_policy_keeps_pulls_on_the_cameras_networks():
    default = AllowPolicy()

    def allowed(policy: AllowPolicy, address: str, port: int) -> bool:
        return policy.allows(ipaddress.ip_address(address), port)

    assert allowed(default, "10.1.2.3", 554) and allowed(default, "172.20.0.9", 8554)
    assert allowed(default, "192.168.1.64", 322) and allowed(default, "::ffff:10.0.0.1", 554)
    for address in ("127.0.0.1", "169.254.169.254", "0.0.0.0", "224.0.0.1", "8.8.8.8", "::1", "fe80::1",
                    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "172.32.0.1", "255.255.255.255"):
        assert not allowed(default, address, 554), address
    assert not allowed(default, "10.1.2.3", 80) and not allowed(default, "10.1.2.3", 6379)
    named = AllowPolicy("192.168.0.0/16:8000,10.9.0.0/16:1000-1002")
    assert allowed(named, "192.168.3.4", 8000) and allowed(named, "192.168.3.4", 554)
    assert not allowed(named, "192.168.3.4", 8001) and not allowed(named, "10.0.0.1", 554)
    assert allowed(named, "10.9.1.1", 1001) and not allowed(named, "10.9.1.1", 1003)
    # Everything listed still leaves loopback, link-local and multicast out, unless listed themselves.
    everything = AllowPolicy("0.0.0.0/0:*,[::/0]:*")
    assert allowed(everything, "8.8.8.8", 80)
    for address in ("127.0.0.1", "169.254.169.254", "0.0.0.0", "239.1.1.1", "::1", "fe80::1", "::ffff:127.0.0.1"):
        assert not allowed(everything, address, 554), address
    assert allowed(AllowPolicy(LOOPBACK), "127.0.0.1", 9) and allowed(AllowPolicy("[::1/128]:*"), "::1", 9)
    for bad in ("10.0.0.0/33", "cam.example", "10.0.0.0/8:0", "10.0.0.0/8:http", "10.0.0.0/8:9-1", "[::1/128]x"):
        with pytest.raises(ValueError):
            parse_allow(bad)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert from_args(parser.parse_args([])).rtsp_allow == Config().rtsp_allow == rtsp_module.DEFAULT_ALLOW
    assert from_args(parser.parse_args(["--rtsp-allow", "10.0.0.0/8:8000"])).rtsp_allow == "10.0.0.0/8:8000"
    with pytest.raises(SystemExit):  # a typo stops the server
        from_args(parser.parse_args(["--rtsp-allow", "10.0.0.0/8,nonsense"]))
    # The host is resolved once and the URL pinned to the address checked; credentials kept.
    assert pin("rtsp://u:p@localhost/x?y=1", AllowPolicy("127.0.0.0/8")) == "rtsp://u:p@127.0.0.1:554/x?y=1"
    assert pin("rtsps://10.0.0.7/x", default) == "rtsps://10.0.0.7:322/x"
    with pytest.raises(NotAllowed):
        pin("rtsp://localhost/x", default)
    with pytest.raises(NotAllowed):
        pin("rtsp://10.0.0.7:8080/x", default)


def test_failures_are_coarse_in_the_api():
    assert error_kind(av.error.ConnectionRefusedError(111, "Connection refused")) == "unreachable"
    assert error_kind(av.error.OSError(101, "Network is unreachable")) == "unreachable"
    assert error_kind(NotAllowed("rtsp.not_allowed")) == "unreachable"
    assert error_kind(av.error.InvalidDataError(1094995529, "Invalid data")) == "not_rtsp"
    assert error_kind(av.error.HTTPNotFoundError(875574520, "404")) == "not_rtsp"
    assert error_kind(rtsp_module.NotH264("no H264")) == "not_rtsp"
    assert error_kind(av.error.HTTPUnauthorizedError(-825242872, "401")) == "auth_failed"
    assert error_kind(av.error.ExitError(-1414092869, "Immediate exit requested")) == "timeout"
    assert error_kind(TimeoutError()) == "timeout" and error_kind(rtsp_module.NoKeyframe()) == "timeout"
    assert error_kind(rtsp_module.StreamEnded()) == "ended"
    assert set(rtsp_module.ERRORS) == {"unreachable", "not_rtsp", "auth_failed", "timeout", "ended"}


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


async def test_urls_outside_the_allowed_networks_are_refused_before_and_when_connecting(rtsp):
    app, host, iid = rtsp["app"], rtsp["host"], rtsp["incident_id"]
    path = f"/api/incidents/{iid}/rtsp-sources"
    app[RTSP].policy = AllowPolicy()  # the default: private networks, camera ports
    for url in ("rtsp://127.0.0.1:554/x", "rtsp://localhost/x", "rtsp://169.254.169.254/latest",
                "rtsp://[::1]/x", "rtsp://[::ffff:127.0.0.1]/x", "rtsp://0.0.0.0/x", "rtsp://10.0.0.1:8080/x",
                "rtsp://10.0.0.1:6379/x", "rtsp://8.8.8.8/x", "rtsp://u:pw@127.0.0.1:2222/x"):
        status, body = await host.call("POST", path, {"url": url, "label": "x"})
        assert status == 400 and body["error"]["code"] == "url_not_allowed", (url, body)
        assert "DUTYCALL_RTSP_ALLOW" in body["error"]["message"]
    assert await listed(host, iid) == [] and not app[RTSP].pulls

    # When connecting the host is resolved again and checked: nothing reaches a refused address.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    loop = asyncio.get_running_loop()
    try:
        puller = Puller(f"rtsp://u:pw@localhost:{port}/x", loop, lambda frame: None, AllowPolicy("10.0.0.0/8:*"))
        puller.start()
        with pytest.raises(NotAllowed):
            await asyncio.wait_for(puller.opened, 10)
        assert puller.join(5)
        with pytest.raises(BlockingIOError):
            listener.accept()  # no connection was made
        # Allowed, it connects to the address it checked (the URL's host pinned to it).
        puller = Puller(f"rtsp://u:pw@localhost:{port}/x", loop, lambda frame: None, AllowPolicy(LOOPBACK))
        puller.start()
        conn = await wait_for(lambda: _accepted(listener), timeout=10, what="the allowed connection")
        conn.close()
        puller.stop()
        assert puller.join(5) and puller.pinned == f"rtsp://u:pw@127.0.0.1:{port}/x"
    finally:
        listener.close()


def _accepted(listener: socket.socket) -> socket.socket | None:
    try:
        return listener.accept()[0]
    except BlockingIOError:
        return None


def _service(reply: bytes | None, trickle: float = 0.0) -> tuple[int, list[socket.socket], threading.Event]:
    """A TCP service on loopback that answers ``reply`` (a byte each ``trickle`` s) to whatever comes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    done = threading.Event()

    def run() -> None:
        listener.settimeout(0.1)
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(conn)
            try:
                conn.recv(4096)
                for i in range(len(reply or b"")) if trickle else ([0] if reply else []):
                    if done.is_set():
                        break
                    conn.sendall(reply[i:i + 1] if trickle else reply)  # type: ignore[index]
                    done.wait(trickle)
            except OSError:
                pass
        listener.close()
        for conn in accepted:
            conn.close()

    threading.Thread(target=run, daemon=True).start()
    return listener.getsockname()[1], accepted, done


async def test_a_stop_is_honoured_while_a_camera_trickles_bytes():
    """A camera that sends a byte now and then never lets a read time out: the stop must still end the
    thread at once (PyAV's interrupt callback), not after the open (10 s) or read timeouts."""
    answer = b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: DESCRIBE, SETUP, PLAY\r\n\r\n" * 10
    port, accepted, done = _service(answer, trickle=0.3)
    try:
        puller = Puller(f"rtsp://127.0.0.1:{port}/x", asyncio.get_running_loop(), lambda frame: None,
                        AllowPolicy(LOOPBACK))
        puller.start()
        await wait_for(lambda: accepted, timeout=10, what="the camera connected to")
        await asyncio.sleep(0.5)  # the open is under way, bytes trickling
        assert not puller.opened.done()
        stopped_at = time.monotonic()
        puller.stop()
        assert await asyncio.to_thread(puller.join, 5)
        assert time.monotonic() - stopped_at < 2.0, "the stop waited for a timeout"
        assert rtsp_module.INTERRUPTIBLE
    finally:
        done.set()


async def test_a_service_that_is_not_rtsp_is_only_not_rtsp(rtsp):
    """An internal HTTP or Redis service reached by mistake: the API says not_rtsp, never FFmpeg's words."""
    app, host, iid = rtsp["app"], rtsp["host"], rtsp["incident_id"]
    app[RTSP].backoff = (30.0, 30.0, 60.0)
    port, _, done = _service(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    try:
        status, added = await host.call("POST", f"/api/incidents/{iid}/rtsp-sources",
                                        {"url": f"rtsp://127.0.0.1:{port}/admin", "label": "x"})
        assert status == 201
        retrying = await wait_for(lambda: state_of(host, iid, added["id"], "retrying"), timeout=30)
        assert retrying["last_error"] == "not_rtsp"
    finally:
        done.set()
    assert (await host.call("DELETE", f"/api/rtsp-sources/{added['id']}"))[0] == 200


async def test_quotas_per_incident_and_unit_hold_under_concurrent_adds(rtsp, monkeypatch):
    app, host, iid = rtsp["app"], rtsp["host"], rtsp["incident_id"]
    app[RTSP].backoff = (30.0, 30.0, 60.0)
    monkeypatch.setattr(rtsp_module, "MAX_PER_INCIDENT", 2)
    monkeypatch.setattr(rtsp_module, "MAX_PER_UNIT", 3)
    path = f"/api/incidents/{iid}/rtsp-sources"
    results = await asyncio.gather(*(host.call("POST", path, {"url": f"rtsp://127.0.0.1:{free_port()}/x",
                                                              "label": f"c{i}"}) for i in range(6)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [201, 201, 429, 429, 429, 429], results
    assert {body["error"]["message"] for status, body in results if status == 429} == \
        {"本事件同时拉取的 RTSP 视频源已达上限（2 个）"}
    # Another incident of the same unit: one more fits (the unit's 3), then the unit is full.
    _, admin = await app[DIRECTORY].sign_in("admin", ADMIN_PASSWORD)
    other = (await app[INCIDENTS].create(admin, incident_report()))["id"]
    other_path = f"/api/incidents/{other}/rtsp-sources"
    results = await asyncio.gather(*(host.call("POST", other_path, {"url": f"rtsp://127.0.0.1:{free_port()}/x",
                                                                    "label": f"d{i}"}) for i in range(3)))
    assert sorted(status for status, _ in results) == [201, 429, 429], results
    assert {body["error"]["message"] for status, body in results if status == 429} == \
        {"本单位同时拉取的 RTSP 视频源已达上限（3 个）"}
    assert len(app[RTSP].pulls) == 3 and not app[RTSP]._adding
    # A stopped source frees its place.
    first = next(body for status, body in results if status == 201)
    assert (await host.call("DELETE", f"/api/rtsp-sources/{first['id']}"))[0] == 200
    assert (await host.call("POST", other_path, {"url": "rtsp://127.0.0.1:9/x", "label": "e"}))[0] == 201


def test_a_frame_without_timestamps_cannot_grow_without_end():
    units = AccessUnits(b"")
    for _ in range(MAX_PARTS * 4):
        units.add(b"\x00\x00\x01\x41" + b"x" * 10, None)
        assert len(units._parts) <= MAX_PARTS
    assert units.overflows >= 3
    big = b"\x00\x00\x01\x41" + b"x" * (1024 * 1024)
    for _ in range(20):
        units.add(big, None)
        assert sum(map(len, units._parts)) <= MAX_PART_BYTES
    # Timestamps again: frames as before.
    assert units.add(b"\x00\x00\x01\x65\x88", 3600) is None
    done = units.add(b"\x00\x00\x01\x41\x9a", 7200)
    assert done is not None and done.pts == 3600


async def test_closing_the_incident_stops_its_sources_at_once(rtsp):
    """Through the incidents' on_ended hook, not at the next check (the back-off here is 30 s)."""
    app, host, iid = rtsp["app"], rtsp["host"], rtsp["incident_id"]
    pulls = app[RTSP]
    pulls.backoff = (30.0, 30.0, 60.0)
    assert pulls.incident_ended in app[INCIDENTS].on_ended
    status, added = await host.call("POST", f"/api/incidents/{iid}/rtsp-sources",
                                    {"url": f"rtsp://127.0.0.1:{free_port()}/x", "label": "x"})
    assert status == 201
    await wait_for(lambda: state_of(host, iid, added["id"], "retrying"), timeout=30)
    async with app[SERVICES].sessionmaker.begin() as db:
        (await db.get(Incident, iid)).status = "closed"
    for hook in app[INCIDENTS].on_ended:
        await hook(iid)  # what Incidents.close / merge do after their commit
    assert (await listed(host, iid))[0]["state"] == "stopped"
    assert not pulls.pulls
    assert (await rows(app, RtspSource, id=added["id"]))[0].stopped_at is not None


def _self_signed(directory: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """A certificate for ``localhost`` (and its key), signed by itself."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_rtsps_verifies_the_camera_certificate_against_the_url_host(tmp_path, monkeypatch):
    """rtsps:// is TLS with the certificate verified (system CAs, SSL_CERT_FILE) for the URL's host,
    although the connection goes to the pinned address: an unknown certificate gets no request."""
    import ssl

    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    received: list[bytes] = []
    done = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    received.append(tls.recv(4096))
            except (OSError, ssl.SSLError):
                received.append(b"")  # the client gave up in the handshake
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    loop = asyncio.get_running_loop()

    async def attempt() -> bytes:
        received.clear()
        puller = Puller(f"rtsps://u:pw@localhost:{port}/x", loop, lambda frame: None, AllowPolicy(LOOPBACK))
        puller.start()
        with pytest.raises((OSError, ValueError)):  # no TLS / not an RTSP answer (av.error.*)
            await asyncio.wait_for(puller.opened, 15)
        assert puller.join(5)
        await wait_for(lambda: received, timeout=5, what="the camera saw the attempt")
        return received[0]

    try:
        assert await attempt() == b"", "an untrusted certificate: nothing sent (the password least of all)"
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the camera's CA trusted: it gets the request
        assert (await attempt()).startswith(b"OPTIONS rtsp")
    finally:
        done.set()
