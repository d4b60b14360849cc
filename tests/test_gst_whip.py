"""WHIP publish from independent software: GStreamer 1.22's webrtcbin (tests/gst_whip_publisher.py,
run by Debian's /usr/bin/python3) publishes an incident's footage to /api/whip.

H264 with four slices per frame (several RTP packets per timestamp) and an uneven GOP reaches the
footage room, and an aiortc subscriber there decodes its frames; VP8 is archived (WebM, ffprobe).
webrtcbin 1.22 offers ``a=setup:actpass`` with an RSA certificate: the WHIP answer must get
through DTLS with it (see ``aiortc_compat.widen_dtls_ciphers``)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import pathlib
import time
from typing import Any

import pytest

from dutycall.client import subscribe
from dutycall.media.models import FootageSegment, FootageSource
from dutycall.media.naming import footage_room
from dutycall.web.footage import ARCHIVE, INGEST

from .test_recording import ffprobe
from .test_whip import issue, rows, timeline, whip  # noqa: F401  (the fixture)
from .utils import FrameReader, signalling, wait_for

PUBLISHER = pathlib.Path(__file__).with_name("gst_whip_publisher.py")
SYSTEM_PYTHON = "/usr/bin/python3"


class GstPublisher:
    """The GStreamer publisher as a subprocess; its JSON-lines events, read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []
        self.stderr = b""
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, base: str, token: str, codec: str, seconds: float) -> GstPublisher:
        # --token=VALUE: a token may start with "-" (URL-safe base64), which argparse takes for an option.
        process = await asyncio.create_subprocess_exec(
            SYSTEM_PYTHON, str(PUBLISHER), "--url", f"{base}/api/whip", f"--token={token}", "--codec", codec,
            "--seconds", str(seconds), "--ice-address", "127.0.0.1", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None and self.process.stderr is not None
        errors = asyncio.ensure_future(self._read_stderr())
        async for line in self.process.stdout:
            self.events.append(json.loads(line))
        await errors

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.read(4096):
            self.stderr = (self.stderr + chunk)[-20_000:]

    async def wait(self, *names: str, timeout: float = 30) -> dict[str, Any]:
        """The first of the events ``names`` (or an error event); fails with what the publisher said."""
        try:
            found = await wait_for(lambda: next((e for e in self.events if e["event"] in (*names, "error")), None)
                                   or self.process.returncode is not None, timeout=timeout, what=" or ".join(names))
            if found is True:  # it exited without saying so
                raise AssertionError("the publisher exited")
            return found
        except AssertionError as exc:
            said = [{k: v for k, v in e.items() if k not in ("offer", "answer")} for e in self.events]
            raise AssertionError(f"{exc}; publisher said {said}, exit {self.process.returncode}, "
                                 f"stderr: {self.stderr.decode(errors='replace')[-3000:]}") from None

    def event(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e["event"] == name), None)

    async def finished(self, timeout: float = 60) -> dict[str, Any]:
        await asyncio.wait_for(self._reader, timeout)
        rc = await self.process.wait()
        done = self.event("done")
        assert rc == 0 and done is not None, (rc, self.events, self.stderr.decode(errors="replace")[-3000:])
        return done

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self._reader.cancel()



@pytest.fixture
def own_recordings(whip, tmp_path):
    """This test's archive in its own directory: the server fixture's default ("data/recordings"
    under the working directory) is shared by every test run, and source ids restart at 1."""
    archive = whip["app"][ARCHIVE]
    archive.settings = dataclasses.replace(archive.settings, directory=tmp_path / "recordings")
    return archive.settings.directory


@pytest.fixture
def gst(own_recordings):
    if not pathlib.Path(SYSTEM_PYTHON).exists():  # pragma: no cover - scripts/test.sh installs it
        pytest.fail("Debian's python3 with GStreamer (gi) is needed: see scripts/test.sh")


def latest_sent(publisher: GstPublisher) -> int:
    """The frames the publisher had sent by its last progress (or done) event."""
    return next((e["frames"] for e in reversed(publisher.events) if e["event"] in ("progress", "done")), 0)


async def test_gstreamer_h264_multi_slice_reaches_a_subscriber_that_decodes_it(whip, gst, ws_url):
    app, base, iid, host = whip["app"], whip["base"], whip["incident_id"], whip["host"]
    token = (await issue(host, iid, label="GStreamer H264"))["token"]
    publisher = await GstPublisher.start(base, token, "h264", 6)
    viewer = await signalling(ws_url).connect()
    pc = None
    try:
        posted = await publisher.wait("posted")
        assert posted.get("status") == 201, publisher.events
        assert "a=setup:actpass" in posted["offer"] and "H264" in posted["offer"]
        assert "a=setup:active" in posted["answer"], "aiortc is the DTLS client: the RSA suites matter"
        assert (await publisher.wait("connected"))["event"] == "connected", publisher.events
        session = next(iter(app[INGEST].sessions.values()))
        assert session.publication.codec_name("video") == "H264"
        await viewer.join(footage_room(iid), "viewer")
        pc, _, tracks = await subscribe(viewer, session.publication.id, kinds=("video",))
        reader = FrameReader(tracks["video"])
        await wait_for(lambda: reader.frames > 0, timeout=20, what="the first decoded frame")
        decoded0, sent0 = reader.frames, latest_sent(publisher)
        done = await publisher.finished()
        assert done["delete_status"] == 200
        decoded, sent = reader.frames - decoded0, done["frames"] - sent0
        print(f"GStreamer H264 (4 slices a frame): sent {done['frames']} frames in {done['seconds']} s; "
              f"while subscribed sent {sent}, decoded {decoded} ({decoded / max(sent, 1):.0%}) "
              f"at {reader.size}")
        assert sent >= 60 and decoded >= 0.6 * sent
        assert reader.size == (640, 360)
        await reader.stop()
    finally:
        await publisher.stop()
        if pc is not None:
            await pc.close()
        await viewer.close()
    await wait_for(lambda: not app[INGEST].sessions, what="the session ended by the DELETE")
    source = (await rows(app, FootageSource, incident_id=iid))[-1]
    assert (source.kind, source.label, source.end_reason) == ("whip", "GStreamer H264", "deleted")
    events = await timeline(host, iid)
    assert [(e["kind"], e["actor"]) for e in events] == [("footage_started", "GStreamer H264"),
                                                        ("footage_stopped", "GStreamer H264")]
    assert events[0]["video"] == "H264" and events[0]["audio"] == "opus" and events[1]["reason"] == "deleted"
    # H264 archiving (fragmented MP4) is recording.py's: whatever it wrote must read whole.
    for segment in await rows(app, FootageSegment, source_id=source.id):
        probe = await asyncio.to_thread(ffprobe, app[ARCHIVE].settings.directory / segment.path)
        assert probe["errors"] == "", probe
        video = probe["streams"].get("video")
        if video is not None:
            assert video["codec_name"] == "h264" and int(video["nb_read_frames"]) > 0
        print(f"archived {segment.path}: {probe['duration']:.3f} s, streams {sorted(probe['streams'])}")


async def test_gstreamer_vp8_is_archived_whole(whip, gst):
    app, base, iid, host = whip["app"], whip["base"], whip["incident_id"], whip["host"]
    token = (await issue(host, iid, label="GStreamer VP8"))["token"]
    publisher = await GstPublisher.start(base, token, "vp8", 5)
    try:
        assert (await publisher.wait("connected"))["event"] == "connected", publisher.events
        session = next(iter(app[INGEST].sessions.values()))
        recorder = await wait_for(lambda: app[ARCHIVE].recorders.get(session.source_id))
        first_at = await wait_for(lambda: recorder.writer.first_written_at, what="the first packet archived")
        done = await publisher.finished()
        streamed = time.monotonic() - first_at
        assert done["delete_status"] == 200
    finally:
        await publisher.stop()
    await wait_for(lambda: not app[INGEST].sessions, what="the session ended by the DELETE")
    source = (await rows(app, FootageSource, incident_id=iid))[-1]
    assert source.end_reason == "deleted"
    segments = await rows(app, FootageSegment, source_id=source.id)
    assert [(s.status, s.container, s.video_codec) for s in segments] == [("complete", "webm", "VP8")]
    probe = await asyncio.to_thread(ffprobe, app[ARCHIVE].settings.directory / segments[0].path)
    video = probe["streams"]["video"]
    print(f"GStreamer VP8: sent {done['frames']} frames in {done['seconds']} s, archived {probe['duration']:.3f} s "
          f"({video['nb_read_frames']} frames); media sent {done['media_seconds']} s, {streamed:.3f} s of wall-clock time "
          f"since the first packet archived")
    assert probe["errors"] == "" and int(video["nb_read_frames"]) == int(video["nb_read_packets"])
    assert int(video["nb_read_frames"]) >= 0.9 * done["frames"]
    assert (video["width"], video["height"]) == (640, 360)
    assert probe["streams"]["audio"]["codec_name"] == "opus"
    # What was streamed is the span of the frames' timestamps (webrtcbin sends RTP time from them).
    assert abs(probe["duration"] - done["media_seconds"]) <= 0.5
    events = await timeline(host, iid)
    assert [e["kind"] for e in events] == ["footage_started", "footage_stopped"] and events[0]["video"] == "VP8"
