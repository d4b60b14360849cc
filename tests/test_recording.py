"""The archive (media/recording.py): a real aiortc publisher streams into the real server while it
is recorded; ffprobe reads every segment whole; a recorder killed with SIGKILL mid-segment leaves
a readable file, and the next start finishes its row."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from aiortc import RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from sqlalchemy import select

from dutycall.client import new_peer_connection, publish
from dutycall.directory.models import as_utc
from dutycall.media.errors import NoSpace
from dutycall.media.models import FootageSegment, FootageSource
from dutycall.media.recording import Archive, RecordingSettings, media_duration, sha256_of
from dutycall.synthetic import PreEncodedTrack
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

    def archive(self, segment_seconds: float = 60.0, min_free_bytes: int = 0) -> Archive:
        return Archive(self.sessionmaker, RecordingSettings(self.tmp_path / "recordings", segment_seconds,
                                                            min_free_bytes))

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


async def published(server, ws_url: str, room: str, seconds_of_loop: float = 2.0) -> tuple[Any, Any, Any]:
    """A real aiortc publisher (pre-encoded VP8 640x360 and aiortc's Opus) in ``room``; returns the
    signalling client, its connection and the server's publication."""
    client = await signalling(ws_url).connect()
    await client.join(room, "camera")
    video = PreEncodedTrack(PreEncodedTrack.encode("vp8", 640, 360, 30, 700_000, seconds_of_loop))
    pc, reply = await publish(client, video=video, audio=AudioStreamTrack(), video_codec="VP8")
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


async def test_no_recording_starts_below_the_minimum_free_space(footage, server, ws_url):
    client, pc, publication = await published(server, ws_url, "footage-full-disk")
    try:
        archive = footage.archive(min_free_bytes=1 << 60)
        with pytest.raises(NoSpace) as refused:
            await archive.start(publication, 1, footage.incident_id)
        assert refused.value.msg.key == "footage.no_space"
        assert archive.recorders == {}
    finally:
        await pc.close()
        await client.close()


async def test_a_recorder_killed_with_sigkill_leaves_a_readable_file_that_the_next_start_finishes(footage):
    directory = footage.tmp_path / "recordings"
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.recorder_process", footage.database_url, str(directory),
         str(footage.incident_id), "60"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    pc = new_peer_connection()
    try:
        video = PreEncodedTrack(PreEncodedTrack.encode("vp8", 640, 360, 30, 700_000, 2.0))
        pc.addTransceiver(video, direction="sendonly")
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

        async def recorded_four_seconds() -> bool:
            assert child.poll() is None, "the recording process died"
            while not lines.empty():
                status.update(lines.get_nowait())
            return bool(status.get("first_at")) and time.monotonic() - status["first_at"] >= 4.0

        await wait_for(recorded_four_seconds, timeout=30, what=f"4 s recorded by the child ({status})")
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
    files = sorted((directory / str(footage.incident_id) / str(source_id)).glob("*.webm"))
    assert len(files) == 1
    probe = await asyncio.to_thread(ffprobe, files[0])
    video = probe["streams"]["video"]
    assert int(video["nb_read_frames"]) == int(video["nb_read_packets"]) > 0, "every frame in it decodes"
    kept = await asyncio.to_thread(media_duration, files[0])
    assert kept is not None
    lost = streamed - kept
    print(f"killed after {streamed:.3f} s streamed: the file keeps {kept:.3f} s, "
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
