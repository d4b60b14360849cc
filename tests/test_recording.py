"""The archive (media/recording.py): a real aiortc publisher streams into the real server while it
is recorded; ffprobe reads every segment whole; a recorder killed with SIGKILL mid-segment leaves
a readable file, and the next start finishes its row. VP8 goes to WebM, H264 (multi-slice
frames, irregular GOPs) to fragmented MP4; a disk running low stops the recording cleanly (on
the timeline), and the retention sweep deletes old files of closed incidents, keeping rows."""

from __future__ import annotations

import asyncio
import datetime as dt
import fractions
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Any

import av
import pytest
from aiortc import RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from sqlalchemy import select, update

from dutycall.client import new_peer_connection, publish
from dutycall.directory.models import as_utc
from dutycall.incidents.models import Incident, IncidentEvent
from dutycall.media.errors import NoSpace
from dutycall.media.models import FootageSegment, FootageSource
from dutycall.media.recording import (
    Archive,
    RecordingSettings,
    SegmentWriter,
    h264_nal_units,
    h264_sps_size,
    media_duration,
    sha256_of,
)
from dutycall.synthetic import PreEncodedTrack, noise_frames
from dutycall.web.keys import DIRECTORY, INCIDENTS, SERVICES

from .conftest import ADMIN_PASSWORD
from .utils import signalling, wait_for

BEIJING = dt.timezone(dt.timedelta(hours=8))
ROOT = pathlib.Path(__file__).resolve().parent.parent


def incident_report(title: str = "东湖路燃气泄漏") -> dict[str, Any]:
    now = dt.datetime.now(BEIJING)
    return {
        "title": title, "occurred_at": (now - dt.timedelta(minutes=15)).isoformat(),
        "learned_at": (now - dt.timedelta(minutes=10)).isoformat(),
        "source": "110 转警", "category": "accident", "subtype": "public_facility", "level": "III",
        "place": "东湖路 12 号", "course": "施工挖断燃气管道，周边 200 米已疏散。",
        "deaths": 0, "injured": 2, "missing": 0, "trapped": 0, "measures": "关阀断气，设置警戒。",
        "contact_name": "王五", "contact_phone": "139 0000 0000", "reporter": "张三",
    }


class Footage:
    def __init__(self, app: Any, port: int, incident_id: int, tmp_path: pathlib.Path) -> None:
        self.app = app
        self.port = port
        self.incident_id = incident_id
        self.tmp_path = tmp_path
        self.sessionmaker = app[SERVICES].sessionmaker
        self.database_url = app[SERVICES].config.database_url

    def archive(self, segment_seconds: float = 60.0, min_free_bytes: int = 0, **kwargs: Any) -> Archive:
        settings = {k: kwargs.pop(k) for k in ("space_check_seconds", "retention_days") if k in kwargs}
        return Archive(self.sessionmaker, RecordingSettings(self.tmp_path / "recordings", segment_seconds,
                                                            min_free_bytes, **settings), **kwargs)

    async def timeline(self, kind: str) -> list[dict[str, Any]]:
        rows = await self.rows(IncidentEvent, incident_id=self.incident_id, kind=kind)
        return [dict(r.detail, at=r.at, actor=r.actor) for r in rows]

    async def rows(self, model: Any, **where: Any) -> list[Any]:
        async with self.sessionmaker() as db:
            query = select(model).where(*(getattr(model, k) == v for k, v in where.items())).order_by(model.id)
            return list((await db.execute(query)).scalars())


@pytest.fixture
async def footage(aiohttp_server, tmp_path, server) -> Footage:
    app = server.app
    _, admin = await app[DIRECTORY].sign_in("admin", ADMIN_PASSWORD)
    incident = await app[INCIDENTS].create(admin, incident_report())
    return Footage(app, server.port, incident["id"], tmp_path)


def ffprobe(path: pathlib.Path) -> dict[str, Any]:
    """ffprobe's view of a file: its duration, and per stream the packets and the frames that decode."""
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-count_packets", "-show_entries",
         "format=duration:stream=codec_name,codec_type,width,height,nb_read_frames,nb_read_packets",
         "-of", "json", str(path)], capture_output=True, text=True, timeout=60, check=True)
    found = json.loads(done.stdout)
    return {"errors": done.stderr.strip(), "duration": float(found["format"].get("duration", "nan")),
            "streams": {s["codec_type"]: s for s in found["streams"]}}


#: The H264 camera's keyframes: uneven intervals (frames of a 4 s loop at 30 fps).
H264_KEYFRAMES = (0, 17, 52, 61, 110)
H264_SLICES = 4


def camera_h264(width: int = 640, height: int = 360, fps: int = 30, frames: int = 120) -> list[bytes]:
    """What a real camera sends: libx264 with 4 slices a frame (several RTP packets share each
    timestamp) and keyframes at irregular intervals, SPS/PPS in band before each."""
    encoder: Any = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = fractions.Fraction(1, fps)
    encoder.framerate = fractions.Fraction(fps, 1)
    encoder.bit_rate, encoder.gop_size, encoder.profile = 1_000_000, 100000, "Baseline"
    encoder.options = {"tune": "zerolatency", "preset": "ultrafast", "keyint": "100000", "scenecut": "0",
                       "repeat-headers": "1", "slices": str(H264_SLICES), "threads": "1"}  # else 2 slices
    encoder.open()
    packets = []
    for i, frame in enumerate(noise_frames(frames, width, height)):
        frame.pts, frame.time_base = i, encoder.time_base
        frame.pict_type = av.video.frame.PictureType.I if i in H264_KEYFRAMES else av.video.frame.PictureType.NONE
        packets.append(b"".join(bytes(p) for p in encoder.encode(frame)))
    assert all(packets)
    return packets


def slices(access_unit: bytes) -> int:
    return sum(1 for u in h264_nal_units(access_unit) if u[0] & 0x1F in (1, 5))


def decode_all(path: pathlib.Path) -> dict[str, Any]:
    """Every packet of the file through PyAV's decoders: packets and frames per kind, and for video
    the slices of each access unit as stored (MP4: length-prefixed, turned back into Annex B)."""
    found: dict[str, Any] = {"video_packets": 0, "video_frames": 0, "audio_packets": 0, "audio_frames": 0,
                             "slices": set(), "keyframes": 0}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size == 0:
                continue
            kind = packet.stream.type
            found[f"{kind}_packets"] += 1
            if kind == "video" and path.suffix == ".mp4":
                data, units, pos = bytes(packet), [], 0
                while pos + 4 <= len(data):
                    length = int.from_bytes(data[pos:pos + 4], "big")
                    units.append(data[pos + 4:pos + 4 + length])
                    pos += 4 + length
                found["slices"].add(sum(1 for u in units if u and u[0] & 0x1F in (1, 5)))
                found["keyframes"] += int(packet.is_keyframe)
            found[f"{kind}_frames"] += len(packet.decode())
        for stream in container.streams:
            if stream.type in ("video", "audio"):
                found[f"{stream.type}_frames"] += len(stream.codec_context.decode(None))
    return found


class CameraTrack(PreEncodedTrack):
    """A looped pre-encoded H264 camera (a keyframe request restarts the loop at its keyframe)."""


async def published(server, ws_url: str, room: str, seconds_of_loop: float = 2.0,
                    codec: str = "VP8") -> tuple[Any, Any, Any]:
    """A real aiortc publisher (pre-encoded VP8 640x360, or the multi-slice H264 camera, and
    aiortc's Opus) in ``room``; returns the signalling client, its connection and the server's
    publication."""
    client = await signalling(ws_url).connect()
    await client.join(room, "camera")
    if codec == "VP8":
        video = PreEncodedTrack(PreEncodedTrack.encode("vp8", 640, 360, 30, 700_000, seconds_of_loop))
    else:
        video = CameraTrack(camera_h264())
    pc, reply = await publish(client, video=video, audio=AudioStreamTrack(), video_codec=codec)
    publication = await wait_for(lambda: server.conference.find_room(room)
                                 and server.conference.find_room(room).publications.get(reply["publication_id"]))
    await wait_for(lambda: publication.is_live("video") and publication.is_live("audio"), what="media flowing")
    return client, pc, publication


async def test_a_published_stream_is_archived_in_segments_ffprobe_reads_whole(footage, server, ws_url):
    client, pc, publication = await published(server, ws_url, "footage-archive-test")
    archive = footage.archive(segment_seconds=3.0)
    try:
        source_id = await archive.new_source(footage.incident_id, "test", "摄像机 1", "footage-archive-test")
        recorder = await archive.start(publication, source_id, footage.incident_id)
        first_at = await wait_for(lambda: recorder.writer.first_written_at, what="the first packet written")
        await wait_for(lambda: time.monotonic() - first_at >= 7.0, timeout=30, what="7 s recorded")
        streamed = time.monotonic() - first_at
        await archive.end_source(source_id, "deleted")
    finally:
        await pc.close()
        await client.close()

    segments = await footage.rows(FootageSegment, source_id=source_id)
    assert [s.number for s in segments] == [1, 2, 3], "7 s in 3 s segments, each cut at a keyframe"
    assert all(s.status == "complete" for s in segments)
    assert recorder.writer.dropped == 0
    total = 0.0
    for segment in segments:
        path = footage.tmp_path / "recordings" / segment.path
        probe = await asyncio.to_thread(ffprobe, path)
        assert probe["errors"] == "", f"{segment.path}: {probe['errors']}"
        video, audio = probe["streams"]["video"], probe["streams"]["audio"]
        assert (video["codec_name"], video["width"], video["height"]) == ("vp8", 640, 360)
        assert audio["codec_name"] == "opus"
        # Every frame decodes: as many pictures and audio frames come out as packets went in.
        assert int(video["nb_read_frames"]) == int(video["nb_read_packets"]) > 0
        assert int(audio["nb_read_frames"]) == int(audio["nb_read_packets"]) > 0
        assert (segment.video_codec, segment.audio_codec, segment.width, segment.height) == ("VP8", "opus", 640, 360)
        assert (segment.sha256, segment.size) == await asyncio.to_thread(sha256_of, path)
        assert segment.ended_at is not None and segment.duration is not None
        assert abs(probe["duration"] - segment.duration) < 0.1
        assert abs((as_utc(segment.ended_at) - as_utc(segment.started_at)).total_seconds() - segment.duration) < 0.01
        total += probe["duration"]
    print(f"streamed {streamed:.3f} s, archived {total:.3f} s in {len(segments)} segments "
          f"({', '.join(f'{s.duration:.2f}' for s in segments)})")
    assert abs(total - streamed) <= 0.5
    assert all(s.duration is not None and 2.9 <= s.duration for s in segments[:-1])
    source = (await footage.rows(FootageSource, id=source_id))[0]
    assert source.end_reason == "deleted" and source.ended_at is not None


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_a_recorder_killed_with_sigkill_leaves_a_readable_file_that_the_next_start_finishes(footage, codec):
    directory = footage.tmp_path / "recordings"
    suffix = {"VP8": "webm", "H264": "mp4"}[codec]
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.recorder_process", footage.database_url, str(directory),
         str(footage.incident_id), "60"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    pc = new_peer_connection()
    try:
        if codec == "VP8":
            video = PreEncodedTrack(PreEncodedTrack.encode("vp8", 640, 360, 30, 700_000, 2.0))
        else:
            video = CameraTrack(camera_h264())
        transceiver = pc.addTransceiver(video, direction="sendonly")
        transceiver.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                         if c.name.lower() in (codec.lower(), "rtx")])
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps({"sdp": pc.localDescription.sdp}) + "\n")
        child.stdin.flush()
        lines: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def read() -> None:
            for line in child.stdout:  # type: ignore[union-attr]
                loop.call_soon_threadsafe(lines.put_nowait, json.loads(line))

        reader = loop.run_in_executor(None, read)
        answer = await asyncio.wait_for(lines.get(), 30)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["answer"], type="answer"))
        status: dict[str, Any] = {}

        # Killed mid-fragment (the H264 camera's loop has a keyframe, so a fragment boundary, every 4 s).
        async def recorded_enough() -> bool:
            assert child.poll() is None, "the recording process died"
            while not lines.empty():
                status.update(lines.get_nowait())
            return bool(status.get("first_at")) and time.monotonic() - status["first_at"] >= 4.6

        await wait_for(recorded_enough, timeout=30, what=f"4.6 s recorded by the child ({status})")
        os.kill(child.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        child.wait(10)
        await reader
    finally:
        await pc.close()
        if child.poll() is None:
            child.kill()
            child.wait()
    streamed = killed_at - status["first_at"]
    source_id = status["source_id"]
    files = sorted((directory / str(footage.incident_id) / str(source_id)).glob(f"*.{suffix}"))
    assert len(files) == 1
    probe = await asyncio.to_thread(ffprobe, files[0])
    video = probe["streams"]["video"]
    assert video["codec_name"] == codec.lower()
    assert int(video["nb_read_frames"]) == int(video["nb_read_packets"]) > 0, "every frame in it decodes"
    decoded = await asyncio.to_thread(decode_all, files[0])
    assert decoded["video_frames"] == decoded["video_packets"] > 0
    kept = await asyncio.to_thread(media_duration, files[0])
    assert kept is not None
    lost = streamed - kept
    print(f"{codec}: killed after {streamed:.3f} s streamed: the file keeps {kept:.3f} s, "
          f"{files[0].stat().st_size} bytes; lost {lost:.3f} s")
    assert lost <= 1.5

    # The next start finds the segment the crash left open and finishes its row.
    before = await footage.rows(FootageSegment, source_id=source_id)
    assert [s.status for s in before] in ([], ["recording"])
    recovered = await footage.archive().recover()
    segments = await footage.rows(FootageSegment, source_id=source_id)
    assert [s.id for s in segments] == recovered and len(segments) == 1
    segment = segments[0]
    assert segment.status == "recovered"
    assert (segment.sha256, segment.size) == await asyncio.to_thread(sha256_of, files[0])
    assert segment.duration is not None and abs(segment.duration - kept) < 0.01
    source = (await footage.rows(FootageSource, id=source_id))[0]
    assert source.end_reason == "lost" and source.ended_at is not None
    assert await footage.archive().recover() == [], "once finished, nothing is left to recover"


async def test_h264_with_multi_slice_frames_and_irregular_gops_is_archived_in_fragmented_mp4(footage, server, ws_url):
    """A camera's H264 (4 slices a frame, keyframes at uneven intervals) is kept as it came, in
    fragmented MP4 segments with Opus: every frame decodes, each access unit keeps its 4 slices
    (one per RTP timestamp, however many packets carried it), the SPS/PPS are the avcC."""
    client, pc, publication = await published(server, ws_url, "footage-h264-test", codec="H264")
    assert publication.codec_name("video") == "H264"
    archive = footage.archive(segment_seconds=3.0)
    try:
        source_id = await archive.new_source(footage.incident_id, "test", "摄像机 H264", "footage-h264-test")
        recorder = await archive.start(publication, source_id, footage.incident_id)
        first_at = await wait_for(lambda: recorder.writer.first_written_at, what="the first packet written")
        await wait_for(lambda: time.monotonic() - first_at >= 7.0, timeout=30, what="7 s recorded")
        streamed = time.monotonic() - first_at
        await archive.end_source(source_id, "deleted")
    finally:
        await pc.close()
        await client.close()

    segments = await footage.rows(FootageSegment, source_id=source_id)
    assert len(segments) >= 2 and all(s.status == "complete" for s in segments)
    assert all(s.path.endswith(".mp4") and s.container == "mp4" for s in segments)
    assert recorder.writer.dropped == 0
    total = 0.0
    for segment in segments:
        path = footage.tmp_path / "recordings" / segment.path
        probe = await asyncio.to_thread(ffprobe, path)
        assert probe["errors"] == "", f"{segment.path}: {probe['errors']}"
        video, audio = probe["streams"]["video"], probe["streams"]["audio"]
        assert (video["codec_name"], video["width"], video["height"]) == ("h264", 640, 360)
        assert audio["codec_name"] == "opus"
        assert int(video["nb_read_frames"]) == int(video["nb_read_packets"]) > 0
        assert int(audio["nb_read_frames"]) == int(audio["nb_read_packets"]) > 0
        decoded = await asyncio.to_thread(decode_all, path)
        assert decoded["video_frames"] == decoded["video_packets"] > 0, "every picture decodes"
        assert decoded["audio_frames"] == decoded["audio_packets"] > 0
        assert decoded["slices"] == {H264_SLICES}, "one access unit per timestamp, all its slices in it"
        assert decoded["keyframes"] >= 1
        data = path.read_bytes()
        assert data[4:8] == b"ftyp" and data.index(b"moov") < data.index(b"moof"), "fragmented, moov first"
        assert data.count(b"moof") >= int(probe["duration"]), "a fragment about every second"
        with av.open(str(path)) as container:
            extradata = container.streams.video[0].codec_context.extradata
            assert extradata is not None and extradata[0] == 1, "avcC (not Annex B) extradata"
        assert (segment.video_codec, segment.audio_codec, segment.width, segment.height) == ("H264", "opus", 640, 360)
        assert (segment.sha256, segment.size) == await asyncio.to_thread(sha256_of, path)
        assert segment.duration is not None and abs(probe["duration"] - segment.duration) < 0.1
        total += probe["duration"]
    print(f"H264: streamed {streamed:.3f} s, archived {total:.3f} s in {len(segments)} segments "
          f"({', '.join(f'{s.duration:.2f}' for s in segments)})")
    assert abs(total - streamed) <= 0.5


def test_the_sps_gives_the_picture_size():
    for width, height, profile in ((640, 360, "Baseline"), (1920, 1080, "High"), (1280, 720, "Main"), (176, 144, "High")):
        encoder: Any = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
        encoder.time_base, encoder.profile = fractions.Fraction(1, 30), profile
        encoder.options = {"preset": "ultrafast", "repeat-headers": "1"}
        encoder.open()
        frame = noise_frames(1, width, height)[0]
        frame.pts = 0
        data = b"".join(bytes(p) for p in [*encoder.encode(frame), *encoder.encode(None)])
        sps = next(u for u in h264_nal_units(data) if u[0] & 0x1F == 7)
        assert h264_sps_size(sps) == (width, height), profile
    assert h264_sps_size(b"\x67\x42") is None


async def test_a_disk_running_low_stops_the_recording_cleanly_and_says_so_on_the_timeline(footage, server, ws_url):
    client, pc, publication = await published(server, ws_url, "footage-low-disk")
    free = {"bytes": 1 << 40}
    archive = footage.archive(min_free_bytes=1 << 30, space_check_seconds=0.2,
                              free_space=lambda directory: free["bytes"])
    try:
        source_id = await archive.new_source(footage.incident_id, "test", "摄像机 1", "footage-low-disk")
        recorder = await archive.start(publication, source_id, footage.incident_id)
        first_at = await wait_for(lambda: recorder.writer.first_written_at, what="the first packet written")
        await wait_for(lambda: time.monotonic() - first_at >= 1.5, what="1.5 s recorded")
        free["bytes"] = 100 << 20
        await asyncio.wait_for(recorder.stopped.wait(), 10)
        await wait_for(lambda: archive.recorders == {}, what="the recorder forgotten")
        assert publication.is_live("video"), "the stream stays live"
        assert (await footage.rows(FootageSource, id=source_id))[0].ended_at is None
    finally:
        await pc.close()
        await client.close()
    segments = await footage.rows(FootageSegment, source_id=source_id)
    assert [s.status for s in segments] == ["complete"], "the segment closed cleanly"
    path = footage.tmp_path / "recordings" / segments[0].path
    assert (segments[0].sha256, segments[0].size) == await asyncio.to_thread(sha256_of, path)
    probe = await asyncio.to_thread(ffprobe, path)
    assert probe["errors"] == "" and probe["duration"] >= 1.4
    events = await footage.timeline("footage_recording_stopped")
    assert len(events) == 1
    assert (events[0]["reason"], events[0]["source_id"], events[0]["free_mb"], events[0]["min_mb"]) == (
        "low_disk", source_id, 100, 1024)


async def test_no_recording_starts_below_the_minimum_free_space_and_the_timeline_says_so(footage, server, ws_url):
    client, pc, publication = await published(server, ws_url, "footage-full-disk")
    try:
        archive = footage.archive(min_free_bytes=1 << 60)
        with pytest.raises(NoSpace) as refused:
            await archive.start(publication, 1, footage.incident_id)
        assert refused.value.msg.key == "footage.no_space"
        assert archive.recorders == {}
        with pytest.raises(NoSpace):
            await archive.ensure_space(footage.incident_id, "无人机 1")
    finally:
        await pc.close()
        await client.close()
    events = await footage.timeline("footage_recording_refused")
    assert [(e["reason"], e["source_id"], e["actor"]) for e in events] == [
        ("low_disk", 1, "system"), ("low_disk", None, "无人机 1")]
    assert events[0]["min_mb"] == (1 << 60) // 2**20


async def test_retention_deletes_old_files_of_closed_incidents_keeping_rows_and_hashes(footage, server):
    directory = footage.tmp_path / "recordings"
    _, admin = await server.app[DIRECTORY].sign_in("admin", ADMIN_PASSWORD)
    open_incident = (await server.app[INCIDENTS].create(admin, incident_report("仍在处置的事件")))["id"]
    now = dt.datetime(2027, 3, 1, 12, 0, tzinfo=dt.UTC)
    clock = {"now": now}
    archive = footage.archive(retention_days=30, clock=lambda: clock["now"])

    async def segment(incident_id: int, number: int, ended_days_ago: float | None, status: str) -> FootageSegment:
        source_id = await archive.new_source(incident_id, "test", "摄像机", f"footage-{incident_id}")
        relative = f"{incident_id}/{source_id}/{source_id}-{number:04d}.webm"
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (directory / relative).write_bytes(b"footage %d" % number)
        sha256, size = sha256_of(directory / relative)
        ended = now - dt.timedelta(days=ended_days_ago) if ended_days_ago is not None else None
        async with footage.sessionmaker.begin() as db:
            row = FootageSegment(source_id=source_id, incident_id=incident_id, number=number, path=relative,
                                 container="webm", started_at=(ended or now) - dt.timedelta(minutes=1),
                                 ended_at=ended, size=size, sha256=sha256, status=status)
            db.add(row)
            await db.flush()
            return row

    old = await segment(footage.incident_id, 1, 31, "complete")
    old_recovered = await segment(footage.incident_id, 2, 40, "recovered")
    recent = await segment(footage.incident_id, 3, 29, "complete")
    still_recording = await segment(footage.incident_id, 4, None, "recording")
    of_open_incident = await segment(open_incident, 1, 90, "complete")
    async with footage.sessionmaker.begin() as db:
        await db.execute(update(Incident).where(Incident.id == footage.incident_id).values(status="closed"))

    assert await footage.archive(retention_days=0, clock=lambda: now).sweep() == {}, "0 keeps forever"
    expired = await archive.sweep()
    assert expired == {footage.incident_id: [old.id, old_recovered.id]}
    rows = {r.id: r for r in await footage.rows(FootageSegment)}
    for kept in (recent, still_recording, of_open_incident):
        assert rows[kept.id].status == kept.status and (directory / kept.path).exists()
    for gone in (old, old_recovered):
        assert rows[gone.id].status == "expired" and not (directory / gone.path).exists()
        assert (rows[gone.id].sha256, rows[gone.id].size) == (gone.sha256, gone.size), "the hash stays"
    events = await footage.timeline("footage_expired")
    assert len(events) == 1
    assert (events[0]["segments"], events[0]["segment_ids"], events[0]["days"]) == (2, [old.id, old_recovered.id], 30)
    assert as_utc(events[0]["at"]) == now
    assert await archive.sweep() == {}, "nothing twice"

    # A day later the daily task (which the archive's recovery at start starts) takes the next one.
    clock["now"] = now + dt.timedelta(days=1, hours=1)
    archive.start_retention()
    try:
        await wait_for(lambda: not (directory / recent.path).exists(), what="the daily sweep")
        assert len(await footage.timeline("footage_expired")) == 2
    finally:
        await archive.close()
    assert (await footage.rows(FootageSegment, id=still_recording.id))[0].status == "recording"


async def test_an_h264_segment_plays_and_seeks_in_chromium(tmp_path):
    """The fragmented MP4 (avc1 + Opus) as the writer thread makes it: Debian's Chromium loads it,
    plays it and seeks into it, the picture at its size, nothing dropped."""
    from playwright.async_api import async_playwright

    from .browser import launch

    video = camera_h264()
    silence: Any = av.CodecContext.create("libopus", "w")
    silence.sample_rate, silence.layout, silence.format = 48000, "stereo", "s16"
    silence.open()
    audio = []
    for i in range(50):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate, frame.pts = 48000, i * 960
        audio += [bytes(p) for p in silence.encode(frame)]
    reports: list[Any] = []
    writer = SegmentWriter(RecordingSettings(tmp_path / "recordings", 60.0, 0), "1/1", 1, "H264", "opus",
                           reports.append, lambda: None)
    writer.start()
    batch = []
    for i in range(8 * 50):  # 8 s: two loops of the camera
        batch.append(("audio", audio[i % len(audio)], i * 960, True, i * 0.02))
        for f in range(int(i * 0.02 * 30), int((i + 1) * 0.02 * 30)):
            batch.append(("video", video[f % len(video)], f * 3000, f % len(video) in H264_KEYFRAMES, f / 30))
    writer.queue.put(batch)
    writer.queue.put(None)
    await asyncio.to_thread(writer.join)
    (path,) = (tmp_path / "recordings").rglob("*.mp4")
    (tmp_path / "index.html").write_text(f'<video id="v" src="{path.as_uri()}" muted></video>')
    async with async_playwright() as playwright:
        browser = await launch(playwright, tmp_path / "profile")
        try:
            page = await browser.new_page()
            await page.goto((tmp_path / "index.html").as_uri())
            await page.wait_for_function("document.getElementById('v').readyState >= 1 || document.getElementById('v').error",
                                         timeout=30000)
            loaded = await page.evaluate("(() => { const v = document.getElementById('v'); return "
                                         "{error: v.error && v.error.message, width: v.videoWidth, "
                                         "height: v.videoHeight, duration: v.duration}; })()")
            assert (loaded["error"], loaded["width"], loaded["height"]) == (None, 640, 360)
            assert abs(loaded["duration"] - 8.0) < 0.2
            await page.evaluate("document.getElementById('v').play()")
            await page.wait_for_function("document.getElementById('v').currentTime > 1.0", timeout=30000)
            await page.evaluate("document.getElementById('v').currentTime = 6")
            await page.wait_for_function("document.getElementById('v').currentTime > 6.3", timeout=30000)
            played = await page.evaluate("(() => { const v = document.getElementById('v'); "
                                         "const q = v.getVideoPlaybackQuality(); return {error: v.error && "
                                         "v.error.message, decoded: q.totalVideoFrames}; })()")
            assert played["error"] is None and played["decoded"] > 30
        finally:
            await browser.close()
