"""Playback of the archive (media/playback.py, web/footage_views.py): footage published through
WHIP is listed with each segment's SHA-256; a segment is served with HTTP Range (206, the right
bytes) and Chromium plays and seeks it; a time range downloads as one file joined without
re-encoding whose duration (ffprobe) is the range's within a keyframe interval; every route is
refused out of scope; each play and download is in the footage access record (whatever the Range,
once a minute, the record paged so no entry is out of reach); range downloads are bounded (length,
in flight, disk room, their own threads and temporary directory); other sites are refused."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import pathlib
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiortc import RTCSessionDescription
from playwright.async_api import async_playwright

from dutycall.client import sign_in
from dutycall.media.audit import access_row
from dutycall.media.playback import Playback, remux_range
from dutycall.web import create_app, footage_views
from dutycall.web.footage import ARCHIVE, INGEST
from dutycall.web.keys import DIRECTORY, INCIDENTS, SERVICES

from .browser import launch
from .conftest import ADMIN_PASSWORD, make_config
from .test_recording import ffprobe, incident_report
from .test_whip import Api, issue, publisher, whip_post
from .utils import wait_for

#: The test publisher's clip loops every 2 s, a keyframe at each loop (and when asked).
KEYFRAME_INTERVAL = 2.0
SEGMENT_SECONDS = 3.0


@dataclass
class Recorded:
    app: Any
    base: str
    incident_id: int
    host: Api
    tokens: dict[str, str]
    sources: list[dict[str, Any]]

    @property
    def segments(self) -> list[dict[str, Any]]:
        return self.sources[0]["segments"]


@pytest.fixture
async def recorded(aiohttp_server, tmp_path):
    """An incident of D1 with ~9 s of WHIP footage archived in 3 s segments; a host of D1, a host of
    D2 (out of scope), a console of D1."""
    app = create_app(make_config(f"sqlite:///{tmp_path}/dutycall.sqlite3", recordings_dir=str(tmp_path / "rec"),
                                 recording_min_free_bytes=0, recording_segment_seconds=SEGMENT_SECONDS,
                                 incident_interval=3600))
    server = await aiohttp_server(app, host="127.0.0.1")
    base = f"http://127.0.0.1:{server.port}"
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    ids = {}
    for code in ("D1", "D2"):
        ids[code] = (await directory.create_unit(admin, {"code": code, "name": code, "parent_id": admin.unit_id,
                                                         "kind": "district"}))["id"]
        await directory.create_account(admin, {"username": f"host{code}", "display_name": f"host{code}",
                                               "role": "host", "password": "password-1", "unit_id": ids[code]})
    room = await directory.create_room(admin, {"unit_id": ids["D1"], "name": "D1值班室"})
    tokens = {"console": (await directory.create_device_credential(admin, room["id"], "console"))["token"]}
    _, host_d1 = await directory.sign_in("hostD1", "password-1")
    incident = await app[INCIDENTS].create(host_d1, incident_report())
    host = await Api(base).sign_in("hostD1", "password-1")
    token = (await issue(host, incident["id"], label="无人机 1"))["token"]
    pc, _ = publisher()
    try:
        await pc.setLocalDescription(await pc.createOffer())
        async with aiohttp.ClientSession() as http:
            resp = await whip_post(http, base, token, pc.localDescription.sdp)
            assert resp.status == 201
            location = resp.headers["Location"]
            await pc.setRemoteDescription(RTCSessionDescription(sdp=await resp.text(), type="answer"))
            session = next(iter(app[INGEST].sessions.values()))
            recorder = await wait_for(lambda: app[ARCHIVE].recorders.get(session.source_id))
            first_at = await wait_for(lambda: recorder.writer.first_written_at, what="the first packet archived")
            await wait_for(lambda: time.monotonic() - first_at >= 9.0, timeout=40, what="9 s archived")
            await http.delete(f"{base}{location}", headers={"Authorization": f"Bearer {token}"})
    finally:
        await pc.close()
    status, sources = await host.call("GET", f"/api/incidents/{incident['id']}/footage")
    assert status == 200, sources
    yield Recorded(app, base, incident["id"], host, tokens, sources)
    await host.close()


async def test_segments_are_listed_with_their_hash_and_served_with_range(recorded):
    assert len(recorded.sources) == 1 and recorded.sources[0]["label"] == "无人机 1"
    segments = recorded.segments
    assert len(segments) >= 3 and all(s["status"] == "complete" and len(s["sha256"]) == 64 for s in segments)
    first = segments[0]
    session = recorded.host.session
    resp = await session.get(f"{recorded.base}{first['url']}")
    whole = await resp.read()
    assert resp.status == 200 and resp.headers["Accept-Ranges"] == "bytes"
    assert resp.headers["Content-Type"] == "video/webm"
    assert hashlib.sha256(whole).hexdigest() == first["sha256"] and len(whole) == first["size"]
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("inline; filename=\"incident-") and disposition.isascii()
    assert "filename*=UTF-8''" + quote("无人机 1", safe="") in disposition

    resp = await session.get(f"{recorded.base}{first['url']}", headers={"Range": "bytes=100-1099"})
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes 100-1099/{len(whole)}"
    assert await resp.read() == whole[100:1100]
    resp = await session.get(f"{recorded.base}{first['url']}", headers={"Range": "bytes=-500"})
    assert resp.status == 206 and await resp.read() == whole[-500:]
    resp = await session.get(f"{recorded.base}{first['url']}?download=1")
    assert resp.status == 200 and resp.headers["Content-Disposition"].startswith("attachment;")
    await resp.read()


async def test_a_time_range_downloads_joined_without_reencoding(recorded, tmp_path):
    segments = recorded.segments
    start = dt.datetime.fromisoformat(segments[0]["started_at"]) + dt.timedelta(seconds=1.5)
    end = start + dt.timedelta(seconds=5.0)  # across a segment boundary
    assert end < dt.datetime.fromisoformat(segments[-1]["ended_at"])
    query = f"from={quote(start.isoformat())}&to={quote(end.isoformat())}"
    resp = await recorded.host.session.get(
        f"{recorded.base}/api/footage/sources/{recorded.sources[0]['id']}/download?{query}")
    body = await resp.read()
    assert resp.status == 200, body[:300]
    assert resp.headers["Content-Type"] == "video/webm" and resp.headers["Content-Disposition"].startswith(
        "attachment; filename=\"incident-")
    path = tmp_path / "range.webm"
    path.write_bytes(body)
    probe = await asyncio.to_thread(ffprobe, path)
    video = probe["streams"]["video"]
    print(f"range download: asked 5.000 s, got {probe['duration']:.3f} s")
    assert probe["errors"] == "" and int(video["nb_read_frames"]) == int(video["nb_read_packets"]) > 100
    assert video["codec_name"] == "vp8" and probe["streams"]["audio"]["codec_name"] == "opus"
    assert 5.0 - 0.2 <= probe["duration"] <= 5.0 + KEYFRAME_INTERVAL + 0.2
    assert list(tmp_path.parent.glob("**/footage-*")) == [], "the temporary file is gone"

    for bad in ("from=x&to=y", f"from={quote(end.isoformat())}&to={quote(start.isoformat())}",
                "from=2026-01-01T00:00:00&to=2026-01-01T00:01:00"):
        resp = await recorded.host.session.get(
            f"{recorded.base}/api/footage/sources/{recorded.sources[0]['id']}/download?{bad}")
        assert resp.status == 422, bad
    far = "from=2020-01-01T00:00:00%2B00:00&to=2020-01-01T00:01:00%2B00:00"
    resp = await recorded.host.session.get(
        f"{recorded.base}/api/footage/sources/{recorded.sources[0]['id']}/download?{far}")
    assert resp.status == 404

    status, access = await recorded.host.call("GET", f"/api/incidents/{recorded.incident_id}/footage-access")
    ranged = [a for a in access if a["action"] == "downloaded" and a["range_from"]]
    assert len(ranged) == 1 and dt.datetime.fromisoformat(ranged[0]["range_from"]) == start
    assert ranged[0]["who"] == "hostD1" and ranged[0]["client_address"] == "127.0.0.1"


async def test_every_footage_route_is_refused_out_of_scope(recorded):
    segment, source = recorded.segments[0], recorded.sources[0]
    now = dt.datetime.now(dt.UTC)
    query = f"from={quote((now - dt.timedelta(minutes=5)).isoformat())}&to={quote(now.isoformat())}"
    paths = [f"/api/incidents/{recorded.incident_id}/footage", segment["url"], f"{segment['url']}?download=1",
             f"/api/footage/sources/{source['id']}/download?{query}",
             f"/api/incidents/{recorded.incident_id}/footage-access", f"/api/incidents/{recorded.incident_id}/relays"]
    other = await Api(recorded.base).sign_in("hostD2", "password-1")
    try:
        for path in paths:
            resp = await other.session.get(f"{recorded.base}{path}")
            assert resp.status == 404, path
    finally:
        await other.close()
    cookies = await sign_in(recorded.base, device_token=recorded.tokens["console"])
    async with aiohttp.ClientSession(cookies=cookies) as console:
        for path in paths:
            resp = await console.get(f"{recorded.base}{path}")
            assert resp.status == 403, path
    async with aiohttp.ClientSession() as anonymous:
        for path in paths:
            assert (await anonymous.get(f"{recorded.base}{path}")).status == 401, path
    status, access = await recorded.host.call("GET", f"/api/incidents/{recorded.incident_id}/footage-access")
    assert status == 200 and access == [], "refused requests are not access"


async def test_chromium_plays_a_segment_and_seeks_with_range(recorded, tmp_path):
    segment = recorded.segments[1]
    async with async_playwright() as pw:
        browser = await launch(pw, tmp_path / "chromium")
        try:
            context = await browser.new_context(timezone_id="Asia/Shanghai")
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{recorded.base}/incidents?id={recorded.incident_id}")
            await page.fill("#username", "hostD1")
            await page.fill("#password", "password-1")
            await page.click("#sign-in")
            section = page.locator("[data-section='inc_footage']")
            await section.wait_for(timeout=30000)
            # The section shows "正在读取现场视频…" until the footage list has come (a busy machine).
            await wait_for(lambda: _contains(section, segment["sha256"]), timeout=30, what="the segment listed")
            await section.locator(f"[data-segment='{segment['id']}'] button.play").click()
            video = section.locator("video")
            await video.wait_for(timeout=30000)
            await wait_for(lambda: page.evaluate(
                "() => { const v = document.querySelector('[data-section=inc_footage] video');"
                " return v && v.readyState >= 1 && v.duration > 2; }"), timeout=30, what="metadata loaded")
            seeked = await page.evaluate("""() => new Promise((resolve) => {
                const v = document.querySelector('[data-section=inc_footage] video');
                v.addEventListener('seeked', () => resolve(v.currentTime), { once: true });
                v.currentTime = 2.0;
            })""")
            assert abs(seeked - 2.0) < 0.5
            await wait_for(lambda: page.evaluate(
                "() => document.querySelector('[data-section=inc_footage] video').readyState >= 2"),
                what="a picture at the seek target")
            await page.screenshot(path="/tmp/footage-playback.png", full_page=True)
            status, access = await recorded.host.call("GET",
                                                      f"/api/incidents/{recorded.incident_id}/footage-access")
            assert [(a["action"], a["segment_id"]) for a in access] == [("played", segment["id"])]
            # The incident page shows the access record to its host.
            await page.reload()
            row = page.locator(".inc-access tbody tr", has_text="回放")
            await row.wait_for(timeout=30000)
            assert "hostD1" in await row.inner_text() and "127.0.0.1" in await row.inner_text()
            assert errors == []
        finally:
            await browser.close()


def test_h264_fragmented_mp4_segments_join_at_keyframes_without_reencoding(tmp_path):
    """The archive's H264 segments are fragmented MP4: two made by ffmpeg (1 s GOP) are joined from
    the keyframe before the start to the end, stream copy, every frame decoding."""
    segment = tmp_path / "h264.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", "3",
                    "-c:v", "libx264", "-g", "30", "-bf", "0", "-movflags",
                    "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", str(segment)], check=True, timeout=60)
    t0 = dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.UTC)
    path, kind = remux_range([(segment, t0, "mp4"), (segment, t0 + dt.timedelta(seconds=3), "mp4")],
                             t0 + dt.timedelta(seconds=1.5), t0 + dt.timedelta(seconds=4.5), tmp_path)
    try:
        probe = ffprobe(path)
        video = probe["streams"]["video"]
        assert kind == "mp4" and video["codec_name"] == "h264" and probe["errors"] == ""
        assert int(video["nb_read_frames"]) == int(video["nb_read_packets"]) == 105  # 1.0 s (keyframe) to 4.5 s
        assert abs(probe["duration"] - 3.5) < 0.05
    finally:
        path.unlink()


async def _access(recorded: Recorded) -> list[dict[str, Any]]:
    status, access = await recorded.host.call("GET", f"/api/incidents/{recorded.incident_id}/footage-access")
    assert status == 200, access
    return access


def _range_url(recorded: Recorded, start: dt.datetime, end: dt.datetime, lang: str = "") -> str:
    return (f"{recorded.base}/api/footage/sources/{recorded.sources[0]['id']}/download?"
            f"from={quote(start.isoformat())}&to={quote(end.isoformat())}" + (f"&lang={lang}" if lang else ""))


async def test_every_media_request_is_audited_once_a_minute_whatever_its_range(recorded):
    """Security review: ``Range: bytes=-<size>`` or ``bytes=1-`` fetched the whole segment with no
    access row; ``?download=1`` wrote a row on every request (a flood pushed real entries out)."""
    segment = recorded.segments[1]
    session = recorded.host.session
    resp = await session.get(f"{recorded.base}{segment['url']}", headers={"Range": f"bytes=-{segment['size']}"})
    assert resp.status == 206 and len(await resp.read()) == segment["size"]
    resp = await session.get(f"{recorded.base}{segment['url']}", headers={"Range": "bytes=1-"})
    assert resp.status == 206 and len(await resp.read()) == segment["size"] - 1
    assert [(a["action"], a["segment_id"]) for a in await _access(recorded)] == [("played", segment["id"])]
    for headers in ({}, {"Range": "bytes=0-"}, {"Range": "bytes=100-199"}, {"Range": "bytes=-1"}):
        assert (await session.get(f"{recorded.base}{segment['url']}", headers=headers)).status in (200, 206)
    for headers in ({}, {"Range": "bytes=1-"}, {}, {"Range": f"bytes=-{segment['size']}"}):
        resp = await session.get(f"{recorded.base}{segment['url']}?download=1", headers=headers)
        assert resp.status in (200, 206)
        await resp.read()
    assert sorted((a["action"], a["segment_id"]) for a in await _access(recorded)) == [
        ("downloaded", segment["id"]), ("played", segment["id"])]
    # A minute later each is recorded again, once.
    throttle = recorded.app[footage_views.MEDIA_ACCESS]
    now = time.monotonic()
    throttle.clock = lambda: now + 61
    for _ in range(3):
        await (await session.get(f"{recorded.base}{segment['url']}", headers={"Range": "bytes=5-"})).read()
        await (await session.get(f"{recorded.base}{segment['url']}?download=1")).read()
    actions = [a["action"] for a in await _access(recorded)]
    assert sorted(actions) == ["downloaded", "downloaded", "played", "played"]


async def test_the_access_record_pages_newest_first_and_reaches_every_entry(recorded):
    """The listing used to stop at the newest 1000 rows, silently: older ones were out of reach."""
    app = recorded.app
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    who = {"kind": "account", "name": "flood", "account_id": None}
    async with app[SERVICES].sessionmaker.begin() as db:
        db.add_all([access_row(who, recorded.incident_id, "played", "127.0.0.1",
                               at=t0 + dt.timedelta(seconds=i // 7)) for i in range(2345)])  # ties in time
    path = f"/api/incidents/{recorded.incident_id}/footage-access"
    resp = await recorded.host.session.get(f"{recorded.base}{path}")
    first = await resp.json()
    assert resp.status == 200 and len(first) == 1000 and 'rel="next"' in resp.headers.get("Link", "")
    seen: list[dict[str, Any]] = []
    url: str | None = f"{path}?limit=700"
    pages = 0
    while url:
        resp = await recorded.host.session.get(f"{recorded.base}{url}")
        page = await resp.json()
        assert resp.status == 200 and 0 < len(page) <= 700, page
        seen += page
        pages += 1
        link = resp.headers.get("Link")
        url = link[1:link.index(">")] if link else None
    assert pages == 4 and len(seen) == 2345 and len({a["id"] for a in seen}) == 2345
    order = [(dt.datetime.fromisoformat(a["at"]), a["id"]) for a in seen]
    assert order == sorted(order, reverse=True) and [a["id"] for a in first] == [a["id"] for a in seen[:1000]]
    for bad in ("limit=0", "limit=1001", "limit=x", "before=999999999", "before=-1"):
        resp = await recorded.host.session.get(f"{recorded.base}{path}?{bad}")
        assert resp.status == 422, bad


async def test_range_downloads_are_bounded_in_length_in_flight_and_disk(recorded, monkeypatch):
    """Any reader could run unlimited 6-hour remuxes on the default executor, each writing a full
    temporary copy into the recordings directory's root, and was audited only after it."""
    app = recorded.app
    segments = recorded.segments
    start = dt.datetime.fromisoformat(segments[0]["started_at"]) + dt.timedelta(seconds=1)
    end = start + dt.timedelta(seconds=4)
    session = recorded.host.session

    resp = await session.get(_range_url(recorded, start, start + dt.timedelta(hours=2, seconds=1)))
    assert resp.status == 422, resp.status  # was 200: up to 6 h

    gate = threading.Event()
    entered: list[tuple[str, Any]] = []
    real = footage_views.remux_range

    def gated(parts, start, end, directory=None):  # type: ignore[no-untyped-def]
        entered.append((threading.current_thread().name, directory))
        gate.wait(60)
        return real(parts, start, end, directory)

    monkeypatch.setattr(footage_views, "remux_range", gated)

    async def fetch(http: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
        resp = await http.get(url)
        return resp.status, await resp.read()

    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    others = []
    for name in ("hostR1", "hostR2"):
        await directory.create_account(admin, {"username": name, "display_name": name, "role": "host",
                                               "password": "password-1", "unit_id": admin.unit_id})
        others.append(await Api(recorded.base).sign_in(name, "password-1"))
    try:
        first = asyncio.create_task(fetch(session, _range_url(recorded, start, end)))
        await wait_for(lambda: entered, what="the first remux started")
        thread, temp = entered[0]
        assert thread.startswith("footage-remux"), thread  # not the default executor
        assert temp == app[ARCHIVE].settings.directory / ".tmp"
        ranged = [a["who"] for a in await _access(recorded) if a["range_from"]
                  and dt.datetime.fromisoformat(a["range_to"]) == end]
        assert ranged == ["hostD1"], "recorded before the remux"
        # one in flight per account
        resp = await session.get(_range_url(recorded, start, end))
        assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0, resp.status
        assert "下载" in (await resp.json())["error"]["message"]
        resp = await session.get(_range_url(recorded, start, end, lang="en"))
        assert resp.status == 429 and "range download" in (await resp.json())["error"]["message"]
        # two in all
        second = asyncio.create_task(fetch(others[0].session, _range_url(recorded, start, end)))
        await wait_for(lambda: len(entered) == 2, what="the second remux started")
        resp = await others[1].session.get(_range_url(recorded, start, end))
        assert resp.status == 429 and resp.headers["Retry-After"], await resp.text()
        gate.set()
        for task in (first, second):
            status, data = await task
            assert status == 200 and len(data) > 10_000, data[:300]
        assert len(entered) == 2
        playback = app[footage_views.PLAYBACK]
        await wait_for(lambda: playback.downloads == {} and playback.reserved == 0, what="the slots released")
        assert list(playback.temp_directory.iterdir()) == []
        # third account's turn now
        status, _ = await fetch(others[1].session, _range_url(recorded, start, end))
        assert status == 200
    finally:
        gate.set()
        for api in others:
            await api.close()

    # The recordings disk keeps the archive's minimum free space besides what the file may take.
    recorded_before = len(await _access(recorded))
    playback.min_free_bytes = 1 << 50
    resp = await session.get(_range_url(recorded, start, end, lang="en"))
    assert resp.status == 503 and "free space" in (await resp.json())["error"]["message"]
    assert len(await _access(recorded)) == recorded_before, "a refused download is not access"


async def test_footage_is_refused_to_other_sites(recorded):
    """SameSite=Strict cookies go with requests from sibling subdomains (same-site, not
    same-origin): a page there could make a reader's browser download footage."""
    segment = recorded.segments[0]
    start = dt.datetime.fromisoformat(segment["started_at"]) + dt.timedelta(seconds=0.5)
    urls = [f"{recorded.base}{segment['url']}", f"{recorded.base}{segment['url']}?download=1",
            _range_url(recorded, start, start + dt.timedelta(seconds=2))]
    session = recorded.host.session
    for url in urls:
        for site in ("same-site", "cross-site", "Same-Site"):
            resp = await session.get(url, headers={"Sec-Fetch-Site": site})
            assert resp.status == 403, (url, site)
            assert "其他网站" in (await resp.json())["error"]["message"]
    assert await _access(recorded) == [], "refused requests are not access"
    for url in urls:
        for headers in ({"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {}):
            resp = await session.get(url, headers=headers)
            assert resp.status == 200, (url, headers)
            await resp.read()


async def test_temporary_files_a_killed_server_left_are_deleted_at_start(aiohttp_server, tmp_path):
    recordings = tmp_path / "rec"
    (recordings / ".tmp").mkdir(parents=True)
    stray = recordings / ".tmp" / "footage-abc.webm"
    stray.write_bytes(b"x" * 1000)
    kept = recordings / "1" / "2" / "0001.webm"
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"segment")
    app = create_app(make_config(f"sqlite:///{tmp_path}/dutycall.sqlite3", recordings_dir=str(recordings),
                                 recording_min_free_bytes=0))
    await aiohttp_server(app, host="127.0.0.1")
    assert not stray.exists() and kept.read_bytes() == b"segment"
    assert (recordings / ".tmp").is_dir()


async def test_a_cancelled_range_download_waits_for_its_remux_and_deletes_the_file(tmp_path):
    """The remux thread cannot be stopped: a download cancelled meanwhile keeps its slot until the
    thread is done, and its file does not stay on the recordings disk."""
    playback = Playback(None, tmp_path, 0)  # type: ignore[arg-type]  # no database needed here
    playback.sweep()
    gate = threading.Event()
    made: list[pathlib.Path] = []

    def slow(segments, start, end, directory):  # type: ignore[no-untyped-def]
        gate.wait(30)
        path = directory / "footage-x.webm"
        path.write_bytes(b"joined")
        made.append(path)
        return path, "webm"

    now = dt.datetime.now(dt.UTC)
    task = asyncio.create_task(playback.remux([], now, now, slow))
    await asyncio.sleep(0)  # let the task reach the pool
    task.cancel()
    await asyncio.sleep(0)
    assert not task.done(), "held until the thread ends"
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert made and not made[0].exists() and list(playback.temp_directory.iterdir()) == []
    playback.close()


async def _contains(locator, text: str) -> bool:
    return text in await locator.inner_text()
