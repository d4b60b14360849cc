"""Pre-recorded greetings (media/playout.py): an uploaded MP4/WebM prepared once (copied where its
codecs allow, AAC → Opus beside copied H264 video, re-encoded for B-frames or long GOPs), played
into a room as a participant and decoded by real aiortc subscribers, in sync; late joiners live
or from the start; bad files refused with nothing stored.

The test files are made here with PyAV: black frames with a white flash, and silence with a
1 kHz beep, at the same instants (FLASHES): a subscriber judges A/V sync by when each flash and
its beep arrive, on one clock.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import os
import pathlib
import subprocess
import threading
import time
from typing import Any

import aiohttp
import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from dutycall.client import subscribe
from dutycall.media import playout as playout_module
from dutycall.media.models import GreetingMedia
from dutycall.synthetic import noise_frames
from dutycall.web.auth import DIRECTORY
from dutycall.web.greeting_media import GREETING_MEDIA, UPLOADS
from dutycall.web.keys import CONFIG

from .conftest import ADMIN_PASSWORD
from .test_whip import Api
from .utils import signalling, wait_for

FLASHES = (1.5, 2.5, 4.5)
FLASH = 0.1  # seconds each flash and beep lasts
#: How long aiortc's receiver holds an audio frame (JitterBuffer(capacity=16, prefetch=4) for
#: audio): the subscriber's own delay, not the playout's.
AUDIO_PREFETCH = 3 * 0.020


def make_media(path: pathlib.Path, fmt: str, vcodec: str, acodec: str | None, seconds: float = 6.0,
               size: tuple[int, int] = (320, 180), fps: int = 30, gop: int = 30, bframes: int = 0) -> pathlib.Path:
    """A test greeting: black frames but white during each flash; silence but a beep during each."""
    out: Any = av.open(str(path), "w", format=fmt)
    video = out.add_stream(vcodec, rate=fps)
    video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
    video.bit_rate = 400_000
    video.codec_context.gop_size = gop
    if vcodec == "libx264":
        video.codec_context.max_b_frames = bframes
        video.options = {"preset": "ultrafast", "bf": str(bframes), "keyint": str(gop), "min-keyint": str(gop),
                         "scenecut": "0"}
    else:
        video.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    audio = None
    if acodec is not None:
        audio = out.add_stream(acodec, rate=48000)
        audio.layout = "mono"
        audio.bit_rate = 64000
    for i in range(int(seconds * fps)):
        lit = any(f <= i / fps < f + FLASH for f in FLASHES)
        picture = np.full((size[1], size[0], 3), 235 if lit else 16, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = i, fractions.Fraction(1, fps)
        out.mux(video.encode(frame))
    out.mux(video.encode(None))
    if audio is not None:
        size_of = 960 if acodec == "libopus" else 1152 if acodec == "libmp3lame" else 1024
        for start in range(0, int(seconds * 48000), size_of):
            t = (np.arange(size_of) + start) / 48000
            lit = np.zeros(size_of, dtype=bool)
            for f in FLASHES:
                lit |= (t >= f) & (t < f + FLASH)
            samples = np.where(lit, 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0)
            if acodec == "libopus":
                frame = av.AudioFrame.from_ndarray((samples * 32767).astype(np.int16).reshape(1, -1), format="s16",
                                                   layout="mono")
            else:
                frame = av.AudioFrame.from_ndarray(samples.astype(np.float32).reshape(1, -1), format="fltp",
                                                   layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 48000, start, fractions.Fraction(1, 48000)
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
    out.close()
    return path


def make_mp3(path: pathlib.Path) -> pathlib.Path:
    out: Any = av.open(str(path), "w", format="mp3")
    audio = out.add_stream("libmp3lame", rate=48000)
    audio.layout = "mono"
    for start in range(0, 48000, 1152):
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1152), dtype=np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, start, fractions.Fraction(1, 48000)
        out.mux(audio.encode(frame))
    out.mux(audio.encode(None))
    out.close()
    return path


def ffprobe_streams(path: str) -> dict[str, Any]:
    done = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,width,height",
                           "-show_entries", "format=duration", "-of", "json", path],
                          capture_output=True, text=True, timeout=60, check=True)
    found = json.loads(done.stdout)
    assert not done.stderr.strip(), done.stderr
    return {"duration": float(found["format"]["duration"]), **{s["codec_type"]: s for s in found["streams"]}}


def keyframe_times(path: str) -> list[float]:
    done = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                           "packet=pts_time,flags", "-of", "csv=p=0", path],
                          capture_output=True, text=True, timeout=60, check=True)
    return [float(line.split(",")[0]) for line in done.stdout.split() if "K" in line.split(",")[1]]


def video_packets(path: str) -> list[bytes]:
    with av.open(path) as container:
        return [bytes(p) for p in container.demux(container.streams.video[0]) if p.size]


@pytest.fixture
async def media(server, tmp_path):
    app = server.app
    base = f"http://127.0.0.1:{server.port}"
    directory = app[DIRECTORY]
    _, admin = await directory.sign_in("admin", ADMIN_PASSWORD)
    district = await directory.create_unit(admin, {"code": "D2", "name": "西区", "kind": "district",
                                                   "parent_id": admin.unit_id})
    for username, role, unit in (("hostD2", "host", district["id"]), ("leaderD2", "leader", district["id"]),
                                 ("officer", "duty_officer", admin.unit_id)):
        await directory.create_account(admin, {"username": username, "display_name": username, "role": role,
                                               "password": "password-1", "unit_id": unit})
    host = await Api(base).sign_in("admin", ADMIN_PASSWORD)
    yield {"app": app, "base": base, "host": host, "ws_url": f"ws://127.0.0.1:{server.port}/ws", "tmp": tmp_path,
           "library": app[GREETING_MEDIA], "scope": admin.unit_path, "district_path": f"{admin.unit_path}{district['id']}/"}
    await host.close()


async def upload(api: Api, path: pathlib.Path, content_type: str = "video/mp4",
                 label: str | None = None) -> tuple[int, Any]:
    query = f"?label={label}" if label else ""
    resp = await api.session.post(f"{api.base}/api/greeting-media{query}", data=path.read_bytes(),
                                  headers={"X-CSRF-Token": api.csrf, "Content-Type": content_type,
                                           "X-Filename": path.name})
    return resp.status, await resp.json()


async def ready(api: Api, media_id: int) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        status, body = await api.call("GET", f"/api/greeting-media/{media_id}")
        assert status == 200, body
        return body if body["status"] != "processing" else None

    row = await wait_for(done, 60, 0.2, "the greeting video prepared")
    assert row["status"] == "ready", row
    return row


class Watcher:
    """A console in the room: subscribes to a publication's video and audio, decodes both, and
    notes when each flash (a bright picture) and each beep (a loud audio frame) arrives."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, float]] = []  # (arrival, mean luma)
        self.sounds: list[tuple[float, float]] = []  # (arrival, rms)
        self.subscribed_at = 0.0
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self, ws_url: str, room: str, publication_id: str, name: str = "值班室") -> Watcher:
        self.client = await signalling(ws_url).connect()
        await self.client.join(room, name)
        self.subscribed_at = time.monotonic()
        self.pc, _, tracks = await subscribe(self.client, publication_id, ("audio", "video"))
        self.tasks = [asyncio.ensure_future(self._read(tracks["video"], True)),
                      asyncio.ensure_future(self._read(tracks["audio"], False))]
        return self

    async def _read(self, track: Any, video: bool) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic()
            if video:
                self.frames.append((now, float(frame.to_ndarray(format="gray").mean())))
            else:
                samples = frame.to_ndarray().astype(np.float64) / 32768.0
                self.sounds.append((now, float(np.sqrt(np.mean(samples ** 2)))))

    def flashes(self) -> list[float]:
        """Arrival of each flash's first bright frame."""
        return _onsets([(t, v > 128) for t, v in self.frames])

    def beeps(self) -> list[float]:
        """Arrival of each beep's first loud audio frame, less what aiortc's audio jitter buffer
        holds it (it hands a frame on once 4 are in: the three 20 ms frames after it)."""
        return [t - AUDIO_PREFETCH for t in _onsets([(t, v > 0.05) for t, v in self.sounds])]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.pc.close()
        await self.client.close()


def _onsets(marks: list[tuple[float, bool]]) -> list[float]:
    found, previous = [], False
    for at, on in marks:
        if on and not previous:
            found.append(at)
        previous = on
    return found


def assert_in_sync(watcher: Watcher, flashes: int) -> None:
    pictures, sounds = watcher.flashes(), watcher.beeps()
    print("A/V offsets (s):", [round(b - a, 3) for a, b in zip(pictures, sounds)])
    assert len(pictures) == flashes and len(sounds) == flashes, (pictures, sounds)
    for picture, sound in zip(pictures, sounds):
        assert abs(picture - sound) < 0.1, f"flash at {picture:.3f}, beep at {sound:.3f}"
    # Paced in real time: the flashes arrive about as far apart as they are in the file (a burst
    # would bring them together; 0.3 s leaves room for a loaded machine's scheduling).
    for (a, b), (fa, fb) in zip(zip(pictures, pictures[1:]), zip(FLASHES[-flashes:], FLASHES[-flashes:][1:])):
        assert abs((b - a) - (fb - fa)) < 0.3, (pictures, FLASHES)


async def test_a_vp8_opus_webm_is_copied_and_plays_in_sync_to_a_console(media):
    source = make_media(media["tmp"] / "greeting.webm", "webm", "libvpx", "libopus")
    status, row = await upload(media["host"], source, "video/webm", label="新春慰问")
    assert status == 201, row
    assert row["status"] == "processing" and row["label"] == "新春慰问"
    row = await ready(media["host"], row["id"])
    assert (row["video_codec"], row["audio_codec"], row["transcoded"]) == ("vp8", "opus", False)
    prepared = os.path.join(media["library"].directory, f"{row['id']}.webm")
    # Remuxed, not re-encoded: the prepared file's frames are the upload's, byte for byte.
    assert video_packets(prepared) == video_packets(str(source))
    import hashlib
    assert row["sha256"] == hashlib.sha256(pathlib.Path(prepared).read_bytes()).hexdigest()
    probe = ffprobe_streams(prepared)
    assert (probe["video"]["codec_name"], probe["audio"]["codec_name"]) == ("vp8", "opus")
    assert abs(probe["duration"] - 6.0) < 0.2 and abs(row["duration"] - 6.0) < 0.2

    ended: list[str] = []
    playouts = media["library"].playouts
    play = await playouts.start("playout-1", row["id"], "live", lead=1.5, scope=media["scope"])
    play.on_ended.append(lambda p, reason: ended.append(reason))
    assert play.publication is not None and play.tag == f"greeting_media:{row['id']}"
    watcher = await Watcher().start(media["ws_url"], "playout-1", play.publication.id)
    # A second console takes the encoded packets: exactly the file's frames (no re-encoding).
    client = await signalling(media["ws_url"]).connect()
    await client.join("playout-1", "值班室2")
    pc, _, tracks = await subscribe(client, play.publication.id, ("video",), passthrough=True)
    received: list[bytes] = []

    async def take() -> None:
        while True:
            try:
                received.append(bytes(await tracks["video"].recv()))
            except MediaStreamError:
                return

    taking = asyncio.ensure_future(take())
    await wait_for(lambda: ended, 30, what="the playout ending")
    assert ended == ["ended"]
    taking.cancel()
    await pc.close()
    await client.close()
    await watcher.close()
    assert len(watcher.frames) > 120 and len(watcher.sounds) > 200, (len(watcher.frames), len(watcher.sounds))
    assert_in_sync(watcher, 3)
    original = set(video_packets(str(source)))
    assert len(received) > 120 and all(p in original for p in received)
    assert not playouts.active


async def test_an_h264_aac_mp4_keeps_its_video_gets_opus_and_late_joiners_start_at_the_beginning(media):
    """Decision: H264 without B-frames is copied (a phone's MP4 keeps its picture untouched) and
    only its AAC audio is transcoded to Opus (cheap); the prepared file is an MP4 (H264 + Opus)."""
    source = make_media(media["tmp"] / "greeting.mp4", "mp4", "libx264", "aac")
    status, row = await upload(media["host"], source)
    assert status == 201, row
    row = await ready(media["host"], row["id"])
    assert (row["video_codec"], row["audio_codec"], row["transcoded"]) == ("h264", "opus", True)
    assert row["transcode_reason"] == "audio aac"
    prepared = os.path.join(media["library"].directory, f"{row['id']}.mp4")
    assert video_packets(prepared) == video_packets(str(source))  # the video copied
    probe = ffprobe_streams(prepared)
    assert (probe["video"]["codec_name"], probe["audio"]["codec_name"]) == ("h264", "opus")

    playouts = media["library"].playouts
    play = await playouts.start("playout-2", row["id"], "from_start", lead=1.5, scope=media["scope"])
    watcher = await Watcher().start(media["ws_url"], "playout-2", play.publication.id)
    await wait_for(lambda: len(watcher.flashes()) >= 2, 20, what="two flashes at the first console")
    # A console joining now (past the first two flashes) gets its own playout from the start.
    late_play = await playouts.for_late_joiner(play, lead=1.0)
    assert late_play is not play and late_play.tag == f"greeting_media:{row['id']}:late"
    # Another console right after (before the copy has begun) shares it: it too sees it all.
    assert await playouts.for_late_joiner(play, lead=1.0) is late_play
    late = await Watcher().start(media["ws_url"], "playout-2", late_play.publication.id, "迟到值班室")
    await wait_for(lambda: late_play.ended.is_set() and play.ended.is_set(), 30, what="both playouts ending")
    await watcher.close()
    await late.close()
    assert_in_sync(watcher, 3)
    assert_in_sync(late, 3)  # every flash: it started at the beginning
    assert late.frames[0][0] - late.subscribed_at < 3.0


async def test_a_live_late_joiner_joins_mid_way_at_the_next_keyframe(media):
    source = make_media(media["tmp"] / "live.webm", "webm", "libvpx", "libopus")
    status, row = await upload(media["host"], source, "video/webm")
    row = await ready(media["host"], row["id"])
    playouts = media["library"].playouts
    play = await playouts.start("playout-3", row["id"], "live", lead=1.0, scope=media["scope"])
    first = await Watcher().start(media["ws_url"], "playout-3", play.publication.id)
    await wait_for(lambda: len(first.flashes()) >= 2, 20, what="two flashes at the first console")
    assert await playouts.for_late_joiner(play) is play
    late = await Watcher().start(media["ws_url"], "playout-3", play.publication.id, "迟到值班室")
    await wait_for(lambda: play.ended.is_set(), 30, what="the playout ending")
    await first.close()
    await late.close()
    assert len(first.flashes()) == 3
    # Mid-way: only the last flash, and its first picture within a GOP (1 s) and a bit.
    assert len(late.flashes()) == 1 and late.frames, late.flashes()
    assert late.frames[0][0] - late.subscribed_at < 2.0
    assert abs(late.flashes()[0] - first.flashes()[2]) < 0.1


def make_noisy_webm(path: pathlib.Path, bitrate: int, seconds: float, gop: int) -> pathlib.Path:
    """Noisy moving 640x360 VP8 (what costs real bits), libvpx's keyframes uncapped."""
    out: Any = av.open(str(path), "w", format="webm")
    video = out.add_stream("libvpx", rate=30)
    video.width, video.height, video.pix_fmt = 640, 360, "yuv420p"
    video.bit_rate = bitrate
    video.codec_context.gop_size = gop
    video.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    for i, frame in enumerate(noise_frames(int(seconds * 30), 640, 360)):
        frame.pts, frame.time_base = i, fractions.Fraction(1, 30)
        out.mux(video.encode(frame))
    out.mux(video.encode(None))
    out.close()
    return path


def keyframe_sizes(path: str) -> list[int]:
    with av.open(path) as container:
        return [p.size for p in container.demux(container.streams.video[0]) if p.size and p.is_keyframe]


async def test_heavy_video_is_transcoded_once_with_keyframes_a_browser_would_send(media):
    """What every room gets as it is must not cost more than a leader's camera: a file above
    MAX_COPY_BITRATE, or one whose keyframes are many frames heavy (each leaves as N x its packets
    at once), is transcoded once; the transcode's keyframes are capped as a browser caps its own."""
    heavy = make_noisy_webm(media["tmp"] / "heavy.webm", 4_000_000, 2.0, 30)
    spiky = make_noisy_webm(media["tmp"] / "spiky.webm", 700_000, 4.0, 60)
    assert max(keyframe_sizes(str(spiky))) > 64 * 1024  # the premise: libvpx uncapped
    for source, reason in ((heavy, " kbps"), (spiky, " KB")):
        status, row = await upload(media["host"], source, "video/webm")
        assert status == 201, row
        row = await ready(media["host"], row["id"])
        assert row["transcoded"] and row["transcode_reason"].endswith(reason), row
        prepared = os.path.join(media["library"].directory, f"{row['id']}.webm")
        sizes = keyframe_sizes(prepared)
        # ~1 Mbps at 30 fps: a frame's share is ~4.2 KB, 900 % of it ~38 KB.
        assert sizes and max(sizes) < 48 * 1024, sizes


async def test_b_frames_and_long_gops_are_transcoded_once_to_vp8_with_a_1_s_gop(media):
    source = make_media(media["tmp"] / "phone.mp4", "mp4", "libx264", "aac", seconds=3.0, size=(1280, 720),
                        gop=90, bframes=2)
    status, row = await upload(media["host"], source)
    assert status == 201, row
    row = await ready(media["host"], row["id"])
    assert (row["video_codec"], row["audio_codec"], row["transcoded"]) == ("vp8", "opus", True)
    assert row["transcode_reason"] == "B-frames" and (row["width"], row["height"]) == (640, 360)
    prepared = os.path.join(media["library"].directory, f"{row['id']}.webm")
    probe = ffprobe_streams(prepared)
    assert (probe["video"]["codec_name"], probe["video"]["width"], probe["audio"]["codec_name"]) == ("vp8", 640, "opus")
    keys = keyframe_times(prepared)
    assert max(b - a for a, b in zip(keys, keys[1:] + [probe["duration"]])) <= 1.05, keys


async def test_bad_files_are_refused_clearly_and_nothing_is_stored(media):
    host, tmp = media["host"], media["tmp"]
    text = tmp / "notes.mp4"
    text.write_text("这不是视频 not a video\n" * 100)
    mp3 = make_mp3(tmp / "speech.mp3")
    good = make_media(tmp / "cut.mp4", "mp4", "libx264", "aac", seconds=2.0)
    truncated = tmp / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    expected = {text: "不是可读的 MP4 或 WebM", mp3: "没有视频画面", truncated: "MP4 或 WebM"}
    for path, words in expected.items():
        status, body = await upload(host, path, "application/octet-stream")
        assert status == 422, (path, body)
        assert body["error"]["code"] == "invalid_media" and words in body["error"]["message"], body
    resp = await host.session.post(f"{host.base}/api/greeting-media?lang=en", data=mp3.read_bytes(),
                                   headers={"X-CSRF-Token": host.csrf, "Accept-Language": "en"})
    assert resp.status == 422
    assert "no video stream" in (await resp.json())["error"]["message"]
    status, body = await host.call("GET", "/api/greeting-media")
    assert status == 200 and body == []
    directory = media["library"].directory
    assert not os.path.isdir(directory) or os.listdir(directory) == []
    async with media["app"][DIRECTORY].sessionmaker() as db:
        from sqlalchemy import select
        assert list((await db.execute(select(GreetingMedia))).scalars()) == []


async def test_playlists_and_concat_scripts_are_refused_and_open_nothing(media):
    """An upload is opened only as the container its first bytes say (MP4/MOV, WebM/Matroska) and
    only through the file protocol: an HLS playlist or a concat script naming another file (here
    /etc/passwd, a URL, or another unit's prepared video beside the upload) is 422, nothing stored."""
    host, tmp = media["host"], media["tmp"]
    status, row = await upload(host, make_media(tmp / "good.webm", "webm", "libvpx", "libopus", seconds=1.0),
                               "video/webm")
    assert status == 201, row
    row = await ready(host, row["id"])
    prepared = f"{row['id']}.webm"
    hostile = {
        "passwd.m3u8": "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n",
        "video.m3u8": f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{prepared}\n#EXTINF:10,\n"
                      f"http://127.0.0.1:9/x.ts\n#EXT-X-ENDLIST\n",
        "passwd.ffconcat": "ffconcat version 1.0\nfile '/etc/passwd'\n",
        "video.ffconcat": f"ffconcat version 1.0\nfile '{prepared}'\nfile '{prepared}'\n",
        "video.concat": f"file '{prepared}'\n",
        # A named pipe beside the upload: whether anything opens it shows whether FFmpeg followed.
        "bait.ffconcat": "ffconcat version 1.0\nfile 'bait.webm'\n",
        "bait.concat": "file 'bait.webm'\n",
        "bait.m3u8": "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nbait.webm\n#EXT-X-ENDLIST\n",
    }
    bait = os.path.join(media["library"].directory, "bait.webm")
    os.mkfifo(bait)
    opened, stop = threading.Event(), threading.Event()

    def watch() -> None:  # opening a pipe's write end without blocking succeeds only while a reader has it
        while not stop.is_set():
            try:
                fd = os.open(bait, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                stop.wait(0.005)
                continue
            opened.set()
            os.close(fd)  # the reader sees its end at once

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        for name, text in hostile.items():
            path = tmp / name
            path.write_text(text)
            status, body = await upload(host, path, "video/mp4")
            assert status == 422, (name, body)
            assert body["error"]["code"] == "invalid_media" and "不是可读的 MP4 或 WebM" in body["error"]["message"]
    finally:
        stop.set()
        watcher.join()
        os.unlink(bait)
    assert not opened.is_set(), "FFmpeg opened a file named by an uploaded playlist"
    status, listed = await host.call("GET", "/api/greeting-media")
    assert [r["id"] for r in listed] == [row["id"]]
    assert os.listdir(media["library"].directory) == [prepared]


async def test_uploads_stop_at_the_units_quota_and_the_disks_floor(media):
    """Config with tiny limits: a unit's stored videos past its quota is 413, the disk left below
    its floor (bytes, or a share of the disk) 507, each with its message; nothing stored. Counted
    as it arrives too: a body without a declared length is cut off where it passes the quota."""
    host, tmp, config = media["host"], media["tmp"], media["app"][CONFIG]
    source = make_media(tmp / "q.webm", "webm", "libvpx", "libopus", seconds=1.0)
    status, row = await upload(host, source, "video/webm")
    assert status == 201, row
    row = await ready(host, row["id"])
    directory = media["library"].directory
    stored = sorted(os.listdir(directory))

    config.greeting_media_unit_quota_bytes = row["bytes"] + 1000
    status, body = await upload(host, source, "video/webm")
    assert status == 413 and body["error"]["code"] == "quota_exceeded", body
    assert "本单位已存的慰问视频超过上限" in body["error"]["message"]

    async def chunked() -> Any:
        for _ in range(8):
            yield b"\x1a\x45\xdf\xa3" + b"x" * 508

    resp = await host.session.post(f"{host.base}/api/greeting-media", data=chunked(),
                                   headers={"X-CSRF-Token": host.csrf, "Content-Type": "video/webm",
                                            "Accept-Language": "en"})
    assert resp.status == 413, await resp.text()
    assert "quota" in (await resp.json())["error"]["message"]
    config.greeting_media_unit_quota_bytes = 10 ** 12

    config.greeting_media_min_free_bytes = 2 ** 62  # more than any disk has
    status, body = await upload(host, source, "video/webm")
    assert status == 507 and body["error"]["code"] == "insufficient_storage", body
    assert "服务器存储空间不足" in body["error"]["message"]
    config.greeting_media_min_free_bytes, config.greeting_media_min_free_ratio = 0, 1.0  # the whole disk
    status, body = await upload(host, source, "video/webm")
    assert status == 507, body
    status, listed = await host.call("GET", "/api/greeting-media")
    assert [r["id"] for r in listed] == [row["id"]]
    assert sorted(os.listdir(directory)) == stored  # no upload left behind
    assert not media["app"][UPLOADS]
    config.greeting_media_min_free_ratio = 0.0
    status, body = await upload(host, source, "video/webm")
    assert status == 201, body


async def test_a_preparation_past_its_time_limit_is_killed_and_fails_cleanly(media):
    """The preparing child process is killed at its wall-clock limit (here tiny, by config): the
    video is "failed" with the reason, and no upload, partial or prepared file is left."""
    host, config = media["host"], media["app"][CONFIG]
    config.greeting_media_prepare_seconds = 0.05
    source = make_media(media["tmp"] / "slow.mp4", "mp4", "libx264", "aac", seconds=2.0, bframes=2)
    status, row = await upload(host, source)
    assert status == 201, row

    async def settled() -> dict[str, Any] | None:
        _, body = await host.call("GET", f"/api/greeting-media/{row['id']}")
        return body if body["status"] != "processing" else None

    row = await wait_for(settled, 30, 0.1, "the preparation given up")
    assert row["status"] == "failed" and "time limit" in row["failure"], row
    assert os.listdir(media["library"].directory) == []


async def test_a_stalled_or_trickled_upload_is_abandoned_and_frees_its_slot(media):
    """A raw socket sends the headers and a few bytes, then stalls; another trickles a byte now and
    then (never idle long, far under the minimum rate): each is answered 408 and closed within the
    (config-tuned) limits, the partial file removed, and the upload's slot free again."""
    host, config = media["host"], media["app"][CONFIG]
    config.greeting_upload_idle_seconds, config.greeting_upload_min_rate = 1.0, 32 * 1024
    port = int(host.base.rsplit(":", 1)[1])
    cookies = "; ".join(f"{c.key}={c.value}" for c in host.session.cookie_jar)
    head = (f"POST /api/greeting-media HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookies}\r\n"
            f"X-CSRF-Token: {host.csrf}\r\nContent-Type: video/webm\r\nContent-Length: 10000000\r\n\r\n").encode()

    async def slow_upload(trickle: bool) -> tuple[bytes, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        began = time.monotonic()
        writer.write(head + b"\x1a\x45\xdf\xa3" + b"x" * 60)
        await writer.drain()

        async def drip() -> None:
            while trickle:
                await asyncio.sleep(0.3)  # (the client's behaviour under test, not a wait)
                writer.write(b"x")
                await writer.drain()

        dripping = asyncio.ensure_future(drip())
        try:
            answer = await asyncio.wait_for(reader.read(), 15)  # to the server's close
        finally:
            dripping.cancel()
            await asyncio.gather(dripping, return_exceptions=True)
            writer.close()
        return answer, time.monotonic() - began

    for trickle in (False, True):
        answer, took = await slow_upload(trickle)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["message"] == "请求体发送过慢"
        assert took < 6, took
        assert not media["app"][UPLOADS]
        assert not [n for n in os.listdir(media["library"].directory) if n.startswith(".upload-")]
    source = make_media(media["tmp"] / "after.webm", "webm", "libvpx", "libopus", seconds=1.0)
    status, row = await upload(host, source, "video/webm")
    assert status == 201, row  # the slot is free: not 429


async def test_multipart_upload_roles_and_scope(media, tmp_path):
    source = make_media(tmp_path / "m.webm", "webm", "libvpx", "libopus", seconds=1.0)
    leader = await Api(media["base"]).sign_in("leaderD2", "password-1")
    host_d2 = await Api(media["base"]).sign_in("hostD2", "password-1")
    officer = await Api(media["base"]).sign_in("officer", "password-1")
    try:
        form = aiohttp.FormData()
        form.add_field("label", "区领导慰问")
        form.add_field("file", source.read_bytes(), filename="m.webm", content_type="video/webm")
        resp = await leader.session.post(f"{leader.base}/api/greeting-media", data=form,
                                         headers={"X-CSRF-Token": leader.csrf})
        row = await resp.json()
        assert resp.status == 201, row
        assert row["label"] == "区领导慰问" and row["original_name"] == "m.webm"
        await ready(leader, row["id"])
        # A field before the file is read up to 512 bytes, never whole: a huge one is refused.
        rows_before = len((await leader.call("GET", "/api/greeting-media"))[1])
        form = aiohttp.FormData()
        form.add_field("label", "慰" * 200_000)
        form.add_field("file", source.read_bytes(), filename="m.webm", content_type="video/webm")
        resp = await leader.session.post(f"{leader.base}/api/greeting-media", data=form,
                                         headers={"X-CSRF-Token": leader.csrf})
        assert resp.status == 422, await resp.text()
        assert len((await leader.call("GET", "/api/greeting-media"))[1]) == rows_before
        # One upload at a time per account (and two in all): a second is 429 with Retry-After.
        uploads = media["app"][UPLOADS]
        _, leader_principal = await media["app"][DIRECTORY].sign_in("leaderD2", "password-1")
        uploads.add(leader_id := leader_principal.id)
        try:
            resp = await leader.session.post(f"{leader.base}/api/greeting-media", data=source.read_bytes(),
                                             headers={"X-CSRF-Token": leader.csrf, "Content-Type": "video/webm"})
            assert resp.status == 429 and resp.headers["Retry-After"] == "30"
            assert "已有视频正在上传" in (await resp.json())["error"]["message"]
        finally:
            uploads.discard(leader_id)
        # Same district: the host sees and may delete it; the city administrator sees it too.
        status, listed = await host_d2.call("GET", "/api/greeting-media")
        assert [r["id"] for r in listed] == [row["id"]]
        status, body = await officer.call("GET", "/api/greeting-media")
        assert status == 403 and "慰问视频" in body["error"]["message"]
        status, body = await upload(officer, source, "video/webm")
        assert status == 403
        # An upload by the city administrator is out of the district's scope.
        status, city = await upload(media["host"], source, "video/webm")
        assert status == 201
        status, _ = await host_d2.call("GET", f"/api/greeting-media/{city['id']}")
        assert status == 404
        await ready(media["host"], city["id"])
        # ... nor played there: a district's greeting cannot play the city's video (404, no playout).
        with pytest.raises(playout_module.NotFound) as refused:
            await media["library"].playouts.start("playout-scope", city["id"], scope=media["district_path"])
        assert "没有编号为" in refused.value.message("zh-CN") and not media["library"].playouts.active
        status, _ = await host_d2.call("DELETE", f"/api/greeting-media/{row['id']}")
        assert status == 200
        assert not os.path.exists(os.path.join(media["library"].directory, f"{row['id']}.webm"))
        status, _ = await host_d2.call("GET", f"/api/greeting-media/{row['id']}")
        assert status == 404
    finally:
        for api in (leader, host_d2, officer):
            await api.close()


async def test_an_upload_over_the_limit_is_cut_off_and_removed(media, tmp_path):
    library = media["library"]

    async def chunks() -> Any:
        for _ in range(10):
            yield b"x" * 1000

    path = library.upload_path()
    with pytest.raises(playout_module.TooLarge):
        await library.receive(chunks(), path, limit=5000)
    assert not os.path.exists(path)
