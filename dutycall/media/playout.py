"""Pre-recorded greetings (issue 13 item 4): an uploaded MP4 or WebM prepared ONCE into a playable
form, then played into a conference room as a participant, packets paced in real time, never
re-encoded per room.

The API the greetings layer calls (``app[GREETING_MEDIA]`` is a :class:`GreetingMediaLibrary`,
``library.playouts`` its :class:`Playouts`)::

    playout = await library.playouts.start(room_name, media_id, mode="live", lead=1.0, scope=unit_path)
    #   scope: the unit path of whoever plays it (a greeting's creator): a video of a unit outside
    #   it is NotFound, as if it did not exist (a district never plays the city's videos)
    playout.publication            # the conference Publication consoles subscribe to
    playout.tag                    # "greeting_media:<id>" (the participant's tag in the room)
    playout.on_ended.append(cb)    # cb(playout, reason): "ended" (the file played out) or "stopped"
    late = await library.playouts.for_late_joiner(playout)
    #   mode "live": ``playout`` itself (the late console joins mid-way: it waits for the next
    #   keyframe, at most ~1-2 s, see Keyframes); mode "from_start": a new playout of the same
    #   prepared file from its beginning in the same room (tag "greeting_media:<id>:late"), for
    #   that console to subscribe to; packet copy only, one thread, almost no CPU. Consoles
    #   joining within one ``lead`` (0.5 s) of each other share such a copy (it has not begun).
    await playout.stop()
    await library.playouts.close()   # server stop

``start`` raises NotFound (no such media, or not ready) and Invalid (still processing / failed).

**Upload and preparation.** ``POST /api/greeting-media`` (``web/greeting_media.py``) streams the
body to ``<recordings>/greetings/.upload-*.tmp`` (at most :data:`MAX_BYTES`, never held in
memory), then :func:`probe` (PyAV, in a worker thread) checks it: an MP4/MOV or WebM/Matroska
container with a video stream whose packets demux to the end. Anything else (text, an MP3, a
truncated file) is refused with a clear zh/en message and nothing is stored. A file that passes
gets a ``greeting_media`` row ("processing") and is prepared once in a child process at nice 10
(one at a time; never on the event loop, never per room; killed and "failed" past
``greeting_media_prepare_seconds``, and held to CPU time, address space and file size limits,
:func:`limit_child`), by :func:`plan`:

- video VP8, or H264 without B-frames (WebRTC has no frame reordering), with keyframes at most
  :data:`MAX_KEYFRAME_INTERVAL` (2 s) apart, at most 1920x1080, at most :data:`MAX_COPY_BITRATE`
  (what a leader's own camera sends, and a little more), and no keyframe heavier than
  :data:`MAX_KEYFRAME_FRAMES` average frames and 48 KB (a browser's encoder caps its own at about
  9 frames' share): **copied** (remuxed). Every console gets the file's packets as they are, so a
  phone's 1080p video at 8 Mbps, or 200 KB keyframes, would cost each of 200 rooms and the server
  far more than the leader's camera (a keyframe leaves as one burst of N x its packets: the
  greeting's worst latency);
- otherwise video is **transcoded once** to VP8, fitting :data:`TARGET_WIDTH` x
  :data:`TARGET_HEIGHT` keeping its aspect, at most 30 fps, ~1 Mbps, a keyframe every second,
  each keyframe capped as a browser caps its own (:data:`TARGET_MAX_INTRA_PCT`);
- audio Opus is copied, any other audio (AAC from a phone's MP4) transcoded to Opus (cheap: a
  phone's H264 video is then still copied), no audio stays none.

The prepared file is ``<recordings>/greetings/<id>.webm`` (VP8) or ``<id>.mp4`` (H264 + Opus);
its SHA-256, duration and codecs go to the row, which turns "ready" (or "failed" with the reason).

**Playout** (the way ``media/rtsp.py`` publishes a camera): an aiortc peer connection in this
process publishes two ``rtsp.PacketTrack``s (video; audio with a 48 kHz clock), whose ``recv``
returns the file's ``av.Packet``s as they are (H264 from MP4 turned Annex B by FFmpeg's
``h264_mp4toannexb``), joined with ``Room.join`` + ``Room.publish``. A reader thread demuxes the
file in its interleaved order and hands each packet to the loop at its presentation time (the
file's timestamps against one monotonic start), so video and audio leave in step; RTP timestamps
come from the same file timestamps and the sender reports (RTCP SR) tie both to one wall clock.

**Keyframes**: a subscriber's keyframe request (PLI) cannot make one (nothing is encoded): a
console that joins mid-way waits for the file's next keyframe. That is why preparation re-encodes
video whose keyframes are more than 2 s apart (with a 1 s GOP).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fractions
import hashlib
import json
import logging
import os
import secrets
import shutil
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..conference import CloseReason, Conference, Participant, Publication, codec_preferences, parse_offer
from ..config import Config
from ..directory.base import DirectoryBase
from ..directory.models import as_utc, utcnow
from ..directory.principal import Principal
from ..messages import CATALOGUE, EN, ZH
from ..text import unsafe_reason
from .errors import Forbidden, Invalid, NoSpace, NotFound, TooMany
from .models import GreetingMedia
from .rtsp import Frame, PacketTrack

logger = logging.getLogger(__name__)

#: The largest upload (bytes).
MAX_BYTES = 500 * 1024 * 1024
MAX_LABEL = 64
#: Keyframes further apart than this (seconds) make preparation re-encode the video.
MAX_KEYFRAME_INTERVAL = 2.0
#: What a transcode aims at.
TARGET_WIDTH, TARGET_HEIGHT, TARGET_FPS, TARGET_BITRATE, AUDIO_BITRATE = 640, 360, 30, 1_000_000, 64_000
#: Video larger than this is transcoded (consoles show it at most full screen on 1080p).
MAX_COPY_PIXELS = 1920 * 1088
#: Video heavier than this (bits per second, over the whole file) is transcoded: a leader's
#: camera on the full profile sends at most 1.2 Mbps, and every room gets the file as it is.
MAX_COPY_BITRATE = 1_500_000
#: A keyframe heavier than this many average frames (and than MIN_HEAVY_KEYFRAME bytes) makes
#: preparation transcode: each one leaves as N x its packets at once.
MAX_KEYFRAME_FRAMES = 12
MIN_HEAVY_KEYFRAME = 48 * 1024
#: A transcode's keyframe at most this percentage of one frame's share of the bitrate
#: (libvpx's rc_max_intra_bitrate_pct, as a browser's WebRTC VP8 encoder sets it at 30 fps).
TARGET_MAX_INTRA_PCT = 900
#: Playouts at once on this server (each: one thread, one loopback peer connection).
MAX_PLAYOUTS = 64
VIDEO_CLOCK, AUDIO_CLOCK = 90000, 48000
#: The demuxers a file is opened with (by its magic bytes, :func:`open_media`), as PyAV names
#: them when pinned ("mov", "matroska") or found ("mov,mp4,…", "matroska,webm").
CONTAINERS = ("mov", "matroska", "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm")
STATUSES = ("processing", "ready", "failed")
MODES = ("live", "from_start")

MESSAGES: dict[str, dict[str, str]] = {
    "greeting_media.no_right": {ZH: "您的角色不能上传或管理慰问视频",
                                EN: "Your role cannot upload or manage greeting videos"},
    "greeting_media.not_found": {ZH: "没有编号为 {id} 的慰问视频", EN: "There is no greeting video {id}"},
    "greeting_media.not_video": {ZH: "文件不是可读的 MP4 或 WebM 视频",
                                 EN: "The file is not a readable MP4 or WebM video"},
    "greeting_media.no_video": {ZH: "文件中没有视频画面（只有声音或其他内容），请上传带画面的 MP4 或 WebM",
                                EN: "The file has no video stream (audio or other data only): upload an MP4 or WebM "
                                    "with a picture"},
    "greeting_media.damaged": {ZH: "视频文件已损坏或不完整（可能上传被截断），请重新上传",
                               EN: "The video file is damaged or incomplete (perhaps cut off): upload it again"},
    "greeting_media.empty": {ZH: "上传的文件为空", EN: "The uploaded file is empty"},
    "greeting_media.bad_form": {ZH: "上传的表单格式不正确（应为 multipart/form-data，文件放在 file 字段）",
                                EN: "The upload form is malformed (multipart/form-data, the file in its file field)"},
    "greeting_media.too_large": {ZH: "视频文件过大（上限 {mb} MB）",
                                 EN: "The video file is too large (at most {mb} MB)"},
    "greeting_media.label": {ZH: "名称应为 1 至 {max} 个字符，且不含控制字符",
                             EN: "The label must be 1 to {max} characters without control characters"},
    "greeting_media.not_ready": {ZH: "慰问视频 {id} 尚未处理完成（{status}）",
                                 EN: "Greeting video {id} is not ready ({status})"},
    "greeting_media.mode": {ZH: "播放方式应为 live（迟到者从当前进度观看）或 from_start（迟到者从头观看）",
                            EN: "The mode must be live (late joiners join mid-way) or from_start (late joiners "
                                "start at the beginning)"},
    "greeting_media.too_many": {ZH: "同时播放的慰问视频已达上限（{max} 路）",
                                EN: "Too many greeting videos playing at once (at most {max})"},
    "greeting_media.in_use": {ZH: "慰问视频 {id} 正在播放，不能删除",
                              EN: "Greeting video {id} is playing: it cannot be deleted"},
    "greeting_media.quota": {ZH: "本单位已存的慰问视频超过上限（{mb} MB），请先删除不用的视频",
                             EN: "Your unit's stored greeting videos would pass its quota ({mb} MB): delete unused "
                                 "ones first"},
    "greeting_media.disk_full": {ZH: "服务器存储空间不足（须保留至少 {mb} MB 空闲），暂不能上传视频，请联系管理员",
                                 EN: "The server is short of disk space (at least {mb} MB must stay free): no video "
                                     "can be uploaded now; tell the administrator"},
    "greeting_media.busy": {ZH: "已有视频正在上传，请稍后再试（每个账号同时 1 个，全部同时 {max} 个）",
                            EN: "A video is already being uploaded: try again later (1 at a time per account, "
                                "{max} in all)"},
}
CATALOGUE.update(MESSAGES)


class BadMedia(Invalid):
    """An upload that is not a usable greeting video (422, nothing stored)."""

    code = "invalid_media"


class TooLarge(BadMedia):
    """An upload over its limit (the route answers 413)."""

    code = "too_large"


class OverQuota(TooLarge):
    """An upload that would take its unit's stored videos past the quota (413)."""

    code = "quota_exceeded"


class DiskFull(NoSpace):
    """An upload that would leave less than the floor free on the disk (the route answers 507)."""

    code = "insufficient_storage"


# -- checking and planning (in a worker thread / the preparing process) -----------------------------


@dataclass
class Probe:
    """What a file holds, read by demuxing it to the end (no decoding)."""

    container: str
    video_codec: str
    width: int
    height: int
    fps: float
    audio_codec: str | None
    duration: float
    #: Seconds between keyframes, the longest (the file's end counts as one).
    max_keyframe_interval: float
    #: Whether video packets come out of presentation order (B-frames).
    reordered: bool
    video_packets: int
    #: The video's bytes in all, and its largest keyframe's.
    video_bytes: int = 0
    max_keyframe_bytes: int = 0
    #: Seconds from the first video packet to the last (the file's duration may be its audio's).
    video_span: float = 0.0

    @property
    def video_bitrate(self) -> float:
        """The video's bits per second over its own packets' span, plus one frame."""
        span = max(self.video_span + 1.0 / (self.fps or 30.0), 1e-3)
        return self.video_bytes * 8 / span


#: First bytes of sound-only files (told apart for a clearer refusal, never opened).
AUDIO_MAGIC = (b"ID3", b"OggS", b"fLaC")


def sniff(path: str) -> str | None:
    """FFmpeg's demuxer for a file by its first bytes: "mov" (MP4/MOV: ``ftyp`` at offset 4),
    "matroska" (WebM/Matroska: the EBML magic 1A 45 DF A3); None for anything else."""
    with open(path, "rb") as f:
        head = f.read(12)
    if head[4:8] == b"ftyp":
        return "mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    return None


def open_media(path: str) -> Any:
    """Open an uploaded (or prepared) file for reading with its container pinned by its magic
    bytes and no protocol but ``file``: never FFmpeg's own guess, which would take an HLS
    playlist, a concat script or an ffconcat file and open the files or URLs it names.
    BadMedia ("not_video") for anything else."""
    found = sniff(path)
    if found is None:
        with open(path, "rb") as f:
            head = f.read(12)
        if head.startswith(AUDIO_MAGIC) or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2") or (
                head[:4] == b"RIFF" and head[8:12] == b"WAVE"):
            raise BadMedia("greeting_media.no_video")  # an MP3, Ogg, FLAC or WAV: sound only
        raise BadMedia("greeting_media.not_video")
    return av.open(path, format=found, options={"protocol_whitelist": "file"}, metadata_errors="ignore")


def probe(path: str) -> Probe:
    """Check ``path`` is a greeting video and describe it; BadMedia (with a message key) otherwise.
    Blocking: in a worker thread."""
    try:
        container: Any = open_media(path)
    except (av.FFmpegError, OSError, UnicodeError, ValueError) as exc:
        logger.info("greeting media %s does not open: %s", path, exc)
        raise BadMedia("greeting_media.not_video") from None
    try:
        video = next(iter(container.streams.video), None)
        if (video is None or video.codec_context is None) and container.streams.audio:
            raise BadMedia("greeting_media.no_video")  # an MP3, an M4A: sound only
        if video is None or video.codec_context is None or container.format.name not in CONTAINERS:
            raise BadMedia("greeting_media.not_video")
        audio = next(iter(container.streams.audio), None)
        keyframes: list[float] = []
        last_time, first_time, top_pts = 0.0, None, None
        reordered, count, total, heaviest = False, 0, 0, 0
        streams = [video] + ([audio] if audio is not None else [])
        try:
            for packet in container.demux(*streams):
                if packet.size == 0 or packet.stream is not video:
                    continue
                if packet.pts is None or packet.time_base is None:
                    continue
                seconds = float(packet.pts * packet.time_base)
                if first_time is None:
                    first_time = seconds
                if top_pts is not None and packet.pts < top_pts:
                    reordered = True
                top_pts = packet.pts if top_pts is None else max(top_pts, packet.pts)
                last_time = max(last_time, seconds)
                count += 1
                total += packet.size
                if packet.is_keyframe:
                    keyframes.append(seconds)
                    heaviest = max(heaviest, packet.size)
        except (av.FFmpegError, OSError, ValueError) as exc:
            logger.info("greeting media %s: demux failed: %s", path, exc)
            raise BadMedia("greeting_media.damaged") from None
        if count == 0 or not keyframes or first_time is None:
            raise BadMedia("greeting_media.damaged")
        marks = keyframes + [last_time]
        interval = max(b - a for a, b in zip(marks, marks[1:])) if len(marks) > 1 else 0.0
        rate = video.average_rate or video.guessed_rate
        duration = last_time - first_time
        if container.duration:
            duration = max(duration, container.duration / av.time_base)
        return Probe(container.format.name, video.codec_context.name, video.codec_context.width or 0,
                     video.codec_context.height or 0, float(rate) if rate else 0.0,
                     audio.codec_context.name if audio is not None else None, round(duration, 3),
                     round(interval, 3), reordered, count, total, heaviest, last_time - first_time)
    finally:
        container.close()


def plan(found: Probe) -> dict[str, Any]:
    """How to prepare a probed file: ``video`` "copy" or "vp8", ``audio`` "copy", "opus" or None,
    the prepared ``container`` ("webm" or "mp4") and why video is re-encoded, if it is."""
    why = None
    if found.video_codec not in ("vp8", "h264"):
        why = f"codec {found.video_codec}"
    elif found.video_codec == "h264" and found.reordered:
        why = "B-frames"
    elif found.max_keyframe_interval > MAX_KEYFRAME_INTERVAL:
        why = f"keyframes {found.max_keyframe_interval:.1f} s apart"
    elif found.width * found.height > MAX_COPY_PIXELS:
        why = f"{found.width}x{found.height}"
    elif found.video_bitrate > MAX_COPY_BITRATE:
        why = f"{found.video_bitrate / 1000:.0f} kbps"
    elif found.max_keyframe_bytes > max(MIN_HEAVY_KEYFRAME,
                                        MAX_KEYFRAME_FRAMES * found.video_bytes / max(1, found.video_packets)):
        why = f"keyframes of {found.max_keyframe_bytes // 1024} KB"
    video = "vp8" if why else "copy"
    audio = None if found.audio_codec is None else "copy" if found.audio_codec == "opus" else "opus"
    container = "mp4" if video == "copy" and found.video_codec == "h264" else "webm"
    return {"video": video, "audio": audio, "container": container, "transcode_reason": why}


def _fit(width: int, height: int) -> tuple[int, int]:
    """Within TARGET_WIDTH x TARGET_HEIGHT keeping the aspect (never enlarged), even sizes."""
    scale = min(1.0, TARGET_WIDTH / max(1, width), TARGET_HEIGHT / max(1, height))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def prepare(source: str, target: str, how: dict[str, Any]) -> dict[str, Any]:
    """Write the playable form of ``source`` to ``target`` as ``how`` (:func:`plan`) says; returns
    its sha256, duration and codecs. Blocking and CPU-heavy when transcoding: run in the
    preparing process (:func:`prepare_main`), never on the event loop."""
    temporary = target + ".part"
    source_file: Any = open_media(source)
    out: Any = av.open(temporary, "w", format=how["container"])
    try:
        video_in = source_file.streams.video[0]
        audio_in = next(iter(source_file.streams.audio), None) if how["audio"] else None
        if how["video"] == "copy":
            video_out = out.add_stream_from_template(video_in)
        else:
            width, height = _fit(video_in.codec_context.width, video_in.codec_context.height)
            video_out = out.add_stream("libvpx", rate=TARGET_FPS)
            video_out.width, video_out.height, video_out.pix_fmt = width, height, "yuv420p"
            video_out.bit_rate = TARGET_BITRATE
            video_out.codec_context.gop_size = TARGET_FPS  # a keyframe every second
            video_out.codec_context.time_base = fractions.Fraction(1, TARGET_FPS)
            video_out.options = {"deadline": "realtime", "cpu-used": "6", "lag-in-frames": "0", "auto-alt-ref": "0",
                                 "max-intra-rate": str(TARGET_MAX_INTRA_PCT)}
        audio_out = None
        resampler = fifo = None
        if audio_in is not None:
            if how["audio"] == "copy":
                audio_out = out.add_stream_from_template(audio_in)
            else:
                audio_out = out.add_stream("libopus", rate=AUDIO_CLOCK)
                channels = audio_in.codec_context.channels or 1
                audio_out.layout = "stereo" if channels > 1 else "mono"
                audio_out.bit_rate = AUDIO_BITRATE
                resampler = av.AudioResampler(format="s16", layout=audio_out.layout.name, rate=AUDIO_CLOCK)
                fifo = av.AudioFifo()
        streams = [video_in] + ([audio_in] if audio_in is not None else [])
        start: float | None = None
        next_video = 0.0
        video_index = 0
        audio_samples = 0
        for packet in source_file.demux(*streams):
            is_video = packet.stream is video_in
            copy = how["video"] == "copy" if is_video else how["audio"] == "copy"
            if packet.size == 0 and copy:
                continue  # (an empty packet flushes a decoder below)
            if packet.pts is not None and packet.time_base is not None and start is None:
                start = float(packet.pts * packet.time_base)
            if copy:
                packet.stream = video_out if is_video else audio_out
                out.mux(packet)
                continue
            for frame in packet.decode():
                if is_video:
                    at = float(frame.pts * frame.time_base) - (start or 0.0) if frame.pts is not None else next_video
                    if at + 1e-6 < next_video:
                        continue  # over 30 fps: this frame is dropped
                    picture = frame.reformat(width=video_out.width, height=video_out.height, format="yuv420p")
                    picture.pts = max(video_index, round(at * TARGET_FPS))
                    picture.time_base = fractions.Fraction(1, TARGET_FPS)
                    video_index = picture.pts + 1
                    next_video = video_index / TARGET_FPS
                    out.mux(video_out.encode(picture))
                else:
                    assert resampler is not None and fifo is not None and audio_out is not None
                    if audio_samples == 0 and fifo.samples == 0 and frame.pts is not None:
                        # The first sound keeps its place against the picture (the file's timeline).
                        audio_samples = max(0, round((float(frame.pts * frame.time_base) - (start or 0.0))
                                                     * AUDIO_CLOCK))
                    for piece in resampler.resample(frame):
                        piece.pts = None
                        fifo.write(piece)
                    while fifo.samples >= 960:
                        chunk = fifo.read(960)
                        assert chunk is not None
                        chunk.pts = audio_samples
                        chunk.time_base = fractions.Fraction(1, AUDIO_CLOCK)
                        audio_samples += 960
                        out.mux(audio_out.encode(chunk))
        if how["video"] != "copy":
            out.mux(video_out.encode(None))
        if audio_out is not None and how["audio"] == "opus":
            out.mux(audio_out.encode(None))
    except BaseException:
        out.close()
        source_file.close()
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    out.close()
    source_file.close()
    found = probe(temporary)
    digest = hashlib.sha256()
    with open(temporary, "rb") as f:
        while chunk_bytes := f.read(1 << 20):
            digest.update(chunk_bytes)
    os.replace(temporary, target)
    return {"sha256": digest.hexdigest(), "bytes": os.path.getsize(target), "duration": found.duration,
            "video_codec": found.video_codec, "audio_codec": found.audio_codec, "width": found.width,
            "height": found.height, "max_keyframe_interval": found.max_keyframe_interval}


#: The preparing process's own limits (besides the parent's wall-clock one): address space and
#: the largest file it may write (a transcode never needs more than twice the largest upload).
PREPARE_MEMORY = 4 * 1024 * 1024 * 1024
PREPARE_FILE_SIZE = 2 * MAX_BYTES


def limit_child(cpu_seconds: int) -> None:
    """In the preparing process, before any work: CPU seconds, address space, file size (a
    hostile file cannot make it spin, swell or fill the disk beyond these)."""
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_AS, (PREPARE_MEMORY, PREPARE_MEMORY))
    resource.setrlimit(resource.RLIMIT_FSIZE, (PREPARE_FILE_SIZE, PREPARE_FILE_SIZE))


def prepare_main(argv: list[str]) -> None:
    """``python -m dutycall.media.playout prepare SOURCE TARGET PLAN [CPU_SECONDS]``: the preparing
    process (nice 10, :func:`limit_child`); prints the result as one JSON line, or ``{"error": ...}``."""
    os.nice(10)
    limit_child(int(argv[3]) if len(argv) > 3 else 600)
    source, target, how = argv[0], argv[1], json.loads(argv[2])
    try:
        result = prepare(source, target, how)
    except Exception as exc:  # reported to the parent, which marks the row failed
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:300]}), flush=True)
        sys.exit(1)
    print(json.dumps(result), flush=True)


# -- playout -----------------------------------------------------------------------------------------


class Reader:
    """Demuxes a prepared file in a thread of its own and hands each packet to the loop at its
    presentation time, video and audio on one clock."""

    def __init__(self, path: str, loop: asyncio.AbstractEventLoop, video: Callable[[Frame], None],
                 audio: Callable[[Frame], None] | None) -> None:
        self.path = path
        self._loop = loop
        self._video, self._audio = video, audio
        self._stop = threading.Event()
        self.ended: asyncio.Future[str] = loop.create_future()
        self.packets = 0
        self._thread = threading.Thread(target=self._run, name="greeting-playout", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _post(self, callback: Callable[..., Any], *args: Any) -> bool:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
            return True
        except RuntimeError:  # the loop is closed
            self._stop.set()
            return False

    def _end(self, reason: str) -> None:
        if not self.ended.done():
            self.ended.set_result(reason)

    def _run(self) -> None:
        reason = "ended"
        try:
            self._play()
        except Exception:
            logger.exception("greeting playout of %s failed", self.path)
            reason = "failed"
        if self._stop.is_set():
            reason = "stopped"
        self._post(self._end, reason)

    def _play(self) -> None:
        container: Any = open_media(self.path)
        try:
            video = container.streams.video[0]
            audio = next(iter(container.streams.audio), None) if self._audio is not None else None
            annex_b = None
            if video.codec_context.name == "h264" and container.format.name.startswith("mov"):
                annex_b = av.bitstream.BitStreamFilterContext("h264_mp4toannexb", video)
            streams = [video] + ([audio] if audio is not None else [])
            began = time.monotonic()
            origin: float | None = None
            for packet in container.demux(*streams):
                if self._stop.is_set():
                    return
                if packet.size == 0 or packet.pts is None or packet.time_base is None:
                    continue
                at = float(packet.pts * packet.time_base)
                if origin is None:
                    origin = at
                wait = began + (at - origin) - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return
                if packet.stream is video:
                    keyframe = bool(packet.is_keyframe)  # (filtering takes the packet's fields)
                    parts = annex_b.filter(packet) if annex_b is not None else [packet]
                    for part in parts:
                        frame = Frame(bytes(part), round((at - origin) * VIDEO_CLOCK), keyframe)
                        if not self._post(self._video, frame):
                            return
                else:
                    assert self._audio is not None
                    if not self._post(self._audio, Frame(bytes(packet), round((at - origin) * AUDIO_CLOCK), True)):
                        return
                self.packets += 1
        finally:
            container.close()


class Playout:
    """One prepared file playing into one room as a participant (see the module's docstring)."""

    def __init__(self, playouts: Playouts, media_id: int, path: str, room_name: str, mode: str, tag: str,
                 codecs: tuple[str, str | None]) -> None:
        self.id = secrets.token_hex(6)
        self.media_id, self.path, self.room_name, self.mode, self.tag = media_id, path, room_name, mode, tag
        self.video_codec, self.audio_codec = codecs
        self._playouts = playouts
        self.participant: Participant | None = None
        self.publication: Publication | None = None
        self.started_at: dt.datetime | None = None
        #: Callbacks ``cb(playout, reason)`` ("ended", "stopped", "failed"), sync or async.
        self.on_ended: list[Callable[[Playout, str], Any]] = []
        self.ended = asyncio.Event()
        self.end_reason: str | None = None
        self.video = PacketTrack("video")
        self.audio = PacketTrack("audio", AUDIO_CLOCK) if self.audio_codec else None
        self.reader: Reader | None = None
        #: Whether its packets have begun (a from_start playout still in its lead is shared).
        self.sending = False
        #: The playout this one is a late joiners' copy of (from_start), if it is one.
        self.late_for: Playout | None = None
        #: The unit path it was played in (a late joiner's copy plays in the same).
        self.scope = ""
        self._pc: RTCPeerConnection | None = None
        self._task: asyncio.Task[None] | None = None

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "media_id": self.media_id, "room": self.room_name, "mode": self.mode,
                "tag": self.tag, "publication_id": self.publication.id if self.publication else None,
                "started_at": self.started_at.isoformat() if self.started_at else None,
                "ended": self.ended.is_set(), "end_reason": self.end_reason}

    async def _open(self, conference: Conference, name: str) -> None:
        room = conference.room(self.room_name)
        self.participant = room.join(name, lambda message: None,
                                     identity={"kind": "greeting_media", "greeting_media_id": self.media_id},
                                     tag=self.tag, shown={"greeting_media_id": self.media_id})
        pc = self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            if self.audio is not None:
                pc.addTransceiver(self.audio, direction="sendonly").setCodecPreferences(
                    codec_preferences("audio", "opus"))
            video_name = "H264" if self.video_codec == "h264" else "VP8"
            pc.addTransceiver(self.video, direction="sendonly").setCodecPreferences(
                codec_preferences("video", video_name))
            await pc.setLocalDescription(await pc.createOffer())
            offer = parse_offer(pc.localDescription.sdp, "publish")
            self.publication, answer = await room.publish(self.participant, offer, name, video_name)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        except BaseException:
            await self._close_media()
            raise

    def _begin(self, lead: float) -> None:
        loop = asyncio.get_running_loop()
        self.reader = Reader(self.path, loop, self.video.push, self.audio.push if self.audio else None)
        self.started_at = utcnow()
        self._task = asyncio.ensure_future(self._run(lead))

    async def _run(self, lead: float) -> None:
        reason = "failed"
        try:
            if lead > 0:
                await asyncio.sleep(lead)
            assert self.reader is not None
            self.sending = True
            self.reader.start()
            reason = await self.reader.ended
        except asyncio.CancelledError:
            reason = "stopped"
        finally:
            await self._finish(reason)

    async def _finish(self, reason: str) -> None:
        if self.ended.is_set():
            return
        if self.reader is not None:
            self.reader.stop()
        self.end_reason = reason
        await self._close_media()
        self.ended.set()
        self._playouts._forget(self)
        for callback in list(self.on_ended):
            try:
                result = callback(self, reason)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                logger.exception("greeting playout %s: an on_ended callback failed", self.id)
        logger.info("greeting playout %s of media %s in %s ended (%s)", self.id, self.media_id, self.room_name, reason)

    async def _close_media(self) -> None:
        self.video.stop()
        if self.audio is not None:
            self.audio.stop()
        if self.participant is not None:
            room = self.participant.room
            await room.leave(self.participant, CloseReason.LEFT)
            self._playouts.conference.forget_if_empty(room)
        if self._pc is not None:
            await self._pc.close()

    async def stop(self) -> None:
        """End the playout now (its participant leaves the room). Idempotent."""
        if self.reader is not None:
            self.reader.stop()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        else:
            await self._finish("stopped")


class Playouts:
    """Every playout of the server (see the module's docstring for the API)."""

    def __init__(self, conference: Conference, library: GreetingMediaLibrary) -> None:
        self.conference = conference
        self.library = library
        self.active: dict[str, Playout] = {}

    async def start(self, room_name: str, media_id: int, mode: str = "live", *, scope: str, name: str = "领导慰问",
                    lead: float = 0.0, tag: str | None = None) -> Playout:
        """Publish prepared media ``media_id`` into ``room_name`` and play it; packets start
        ``lead`` seconds after the publication exists (time for consoles to subscribe).
        ``scope``: the unit path of whoever plays it; media of a unit outside it is NotFound."""
        if mode not in MODES:
            raise Invalid("greeting_media.mode", field="mode")
        if len(self.active) >= MAX_PLAYOUTS:
            raise TooMany("greeting_media.too_many", max=MAX_PLAYOUTS)
        path, codecs = await self.library.playable(media_id, scope)
        playout = Playout(self, media_id, path, room_name, mode, tag or f"greeting_media:{media_id}", codecs)
        playout.scope = scope
        self.active[playout.id] = playout
        try:
            await playout._open(self.conference, name)
        except BaseException:
            self.active.pop(playout.id, None)
            raise
        playout._begin(lead)
        return playout

    async def for_late_joiner(self, playout: Playout, lead: float = 0.5) -> Playout:
        """What a console joining ``playout`` late subscribes to: ``playout`` itself in "live"
    mode; in "from_start" mode a playout of the same file from its beginning: a new one, or
        one made for another late console that has not begun yet (within its ``lead``)."""
        if playout.mode == "live" and not playout.ended.is_set():
            return playout
        # Consoles joining within one lead of each other share a copy: it has not begun, so each of
        # them still sees it from the first frame (150 late consoles do not make 150 playouts).
        for late in self.active.values():
            if late.late_for is playout and not late.sending and not late.ended.is_set():
                return late
        late = await self.start(playout.room_name, playout.media_id, "from_start", scope=playout.scope,
                                tag=f"greeting_media:{playout.media_id}:late", lead=lead)
        late.late_for = playout
        return late

    def playing(self, media_id: int) -> bool:
        return any(p.media_id == media_id for p in self.active.values())

    def _forget(self, playout: Playout) -> None:
        if self.active.get(playout.id) is playout:
            del self.active[playout.id]

    async def close(self) -> None:
        await asyncio.gather(*(p.stop() for p in list(self.active.values())), return_exceptions=True)


# -- the library: uploads, preparation, rows ----------------------------------------------------------


class GreetingMediaLibrary:
    """The greeting videos: upload (streamed to disk), check, prepare once, list, delete; and the
    :class:`Playouts` that play them."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], conference: Conference,
                 recordings_dir: str, clock: Callable[[], dt.datetime] = utcnow, config: Config | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.directory = os.path.join(recordings_dir, "greetings")
        #: The limits (disk floor, unit quota, preparation time), read at each use.
        self.config = config or Config()
        self.clock = clock
        self.playouts = Playouts(conference, self)
        self._preparing = asyncio.Semaphore(1)
        self._tasks: set[asyncio.Task[None]] = set()

    @staticmethod
    def require(who: Principal) -> None:
        if not who.may("greetings.media"):
            raise Forbidden("greeting_media.no_right")

    def _json(self, row: GreetingMedia) -> dict[str, Any]:
        return {
            "id": row.id, "label": row.label, "status": row.status, "failure": row.failure,
            "unit_id": row.unit_id, "original_name": row.original_name, "original_bytes": row.original_bytes,
            "bytes": row.bytes, "sha256": row.sha256, "duration": row.duration,
            "video_codec": row.video_codec, "audio_codec": row.audio_codec, "width": row.width, "height": row.height,
            "transcoded": row.transcoded, "transcode_reason": row.transcode_reason,
            "created_at": as_utc(row.created_at).isoformat(),
            "ready_at": as_utc(row.ready_at).isoformat() if row.ready_at else None,
        }

    # -- upload ------------------------------------------------------------------------------------------

    def upload_path(self) -> str:
        """A fresh temporary path for an upload being received (the directory made)."""
        os.makedirs(self.directory, exist_ok=True)
        return os.path.join(self.directory, f".upload-{secrets.token_hex(8)}.tmp")

    async def room(self, who: Principal) -> tuple[int, int, int]:
        """Bytes ``who``'s next upload may have: (left of its unit's quota, left above the disk's
        floor, the floor: the larger of ``greeting_media_min_free_bytes`` and ``_ratio`` of the disk)."""
        config = self.config
        async with self.sessionmaker() as db:
            rows = (await db.execute(select(GreetingMedia.status, GreetingMedia.bytes, GreetingMedia.original_bytes)
                                     .where(GreetingMedia.unit_id == who.unit_id))).all()
        # Stored: a ready video's prepared file; one processing still has its upload (a failed one, nothing).
        used = sum((done or 0) if status == "ready" else (original or 0) if status == "processing" else 0
                   for status, done, original in rows)
        os.makedirs(self.directory, exist_ok=True)
        usage = await asyncio.to_thread(shutil.disk_usage, self.directory)
        floor = max(config.greeting_media_min_free_bytes, int(usage.total * config.greeting_media_min_free_ratio))
        return config.greeting_media_unit_quota_bytes - used, usage.free - floor, floor

    def refusal(self, room: tuple[int, int, int], size: int) -> BadMedia | DiskFull | None:
        """Why an upload of ``size`` bytes cannot be stored with :meth:`room`'s room left, if it cannot."""
        quota, space, floor = room
        if size > space:
            return DiskFull("greeting_media.disk_full", mb=floor // (1024 * 1024))
        if size > quota:
            return OverQuota("greeting_media.quota", mb=self.config.greeting_media_unit_quota_bytes // (1024 * 1024))
        return None

    async def receive(self, chunks: AsyncIterator[bytes], path: str, limit: int = MAX_BYTES,
                      room: tuple[int, int, int] | None = None) -> int:
        """Write ``chunks`` to ``path`` (a file thread per write, nothing kept in memory); TooLarge
        past ``limit``, OverQuota / DiskFull past ``room`` (:meth:`room`) (the file removed).
        Returns the size."""
        size = 0
        handle = await asyncio.to_thread(open, path, "wb")
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise TooLarge("greeting_media.too_large", mb=limit // (1024 * 1024))
                if room is not None and (refused := self.refusal(room, size)) is not None:
                    raise refused
                await asyncio.to_thread(handle.write, chunk)
        except BaseException:
            await asyncio.to_thread(handle.close)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        await asyncio.to_thread(handle.close)
        return size

    async def add(self, who: Principal, path: str, size: int, label: str | None,
                  original_name: str | None) -> dict[str, Any]:
        """Take a received upload at ``path``: check it (BadMedia, the file removed, no row), store
        its row ("processing") and prepare it in the background."""
        self.require(who)
        try:
            label = (label or original_name or "").strip()[:MAX_LABEL] or "慰问视频"
            if unsafe_reason(label, multiline=False):
                raise Invalid("greeting_media.label", field="label", max=MAX_LABEL)
            if size == 0:
                raise BadMedia("greeting_media.empty")
            found = await asyncio.to_thread(probe, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        how = plan(found)
        name = (original_name or "")[:200]
        if unsafe_reason(name, multiline=False):
            name = ""
        async with self.sessionmaker.begin() as db:
            row = GreetingMedia(unit_id=who.unit_id, unit_path=who.unit_path, label=label, status="processing",
                                original_name=name or None, original_bytes=size, created_by=who.id,
                                created_at=self.clock(), transcoded=how["video"] != "copy" or how["audio"] == "opus",
                                transcode_reason=how["transcode_reason"] or (
                                    f"audio {found.audio_codec}" if how["audio"] == "opus" else None))
            db.add(row)
            await db.flush()
            DirectoryBase.audit(db, who, "upload", "greeting_media", row.id, who.unit_path, label=label, bytes=size)
            result = self._json(row)
        task = asyncio.ensure_future(self._prepare(row.id, path, how))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return result

    async def _prepare(self, media_id: int, source: str, how: dict[str, Any]) -> None:
        target = os.path.join(self.directory, f"{media_id}.{how['container']}")
        result: dict[str, Any] = {}
        seconds = self.config.greeting_media_prepare_seconds
        try:
            async with self._preparing:
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "dutycall.media.playout", "prepare", source, target, json.dumps(how),
                    str(max(1, int(seconds) + 1)), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
                try:
                    out, _ = await asyncio.wait_for(process.communicate(), seconds)
                except (asyncio.CancelledError, TimeoutError) as exc:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
                    with contextlib.suppress(OSError):
                        os.unlink(target + ".part")  # what the killed process was writing
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    out = json.dumps({"error": f"preparation took longer than {seconds:g} s (time limit)"}).encode()
            lines = out.decode(errors="replace").strip().splitlines()
            result = json.loads(lines[-1]) if lines else {"error": f"exit {process.returncode}"}
        except asyncio.CancelledError:
            result = {"error": "server stopped"}
            raise
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        finally:
            with contextlib.suppress(OSError):
                os.unlink(source)
            await self._settle(media_id, target, result)

    async def _settle(self, media_id: int, target: str, result: dict[str, Any]) -> None:
        async with self.sessionmaker.begin() as db:
            row = await db.get(GreetingMedia, media_id)
            if row is None:  # deleted while preparing
                with contextlib.suppress(OSError):
                    os.unlink(target)
                return
            if "error" in result:
                row.status, row.failure = "failed", str(result["error"])[:300]
                logger.warning("greeting media %s: preparation failed: %s", media_id, row.failure)
                with contextlib.suppress(OSError):
                    os.unlink(target)
                return
            row.status, row.ready_at, row.path = "ready", self.clock(), os.path.basename(target)
            row.sha256, row.bytes, row.duration = result["sha256"], result["bytes"], result["duration"]
            row.video_codec, row.audio_codec = result["video_codec"], result["audio_codec"]
            row.width, row.height = result["width"], result["height"]
        logger.info("greeting media %s ready: %s", media_id, result)

    # -- reading -------------------------------------------------------------------------------------------

    async def _row(self, db: AsyncSession, who: Principal, media_id: int) -> GreetingMedia:
        row = await db.get(GreetingMedia, media_id)
        if row is None or not who.covers(row.unit_path):
            raise NotFound("greeting_media.not_found", id=media_id)
        return row

    async def get(self, who: Principal, media_id: int) -> dict[str, Any]:
        self.require(who)
        async with self.sessionmaker() as db:
            return self._json(await self._row(db, who, media_id))

    async def list(self, who: Principal) -> list[dict[str, Any]]:
        self.require(who)
        async with self.sessionmaker() as db:
            rows = (await db.execute(select(GreetingMedia).order_by(GreetingMedia.id.desc()))).scalars()
            return [self._json(r) for r in rows if who.covers(r.unit_path)]

    async def delete(self, who: Principal, media_id: int) -> None:
        self.require(who)
        if self.playouts.playing(media_id):
            raise Invalid("greeting_media.in_use", id=media_id)
        async with self.sessionmaker.begin() as db:
            row = await self._row(db, who, media_id)
            path = os.path.join(self.directory, row.path) if row.path else None
            DirectoryBase.audit(db, who, "delete", "greeting_media", row.id, row.unit_path, label=row.label)
            await db.delete(row)
        if path:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(os.unlink, path)

    async def playable(self, media_id: int, scope: str) -> tuple[str, tuple[str, str | None]]:
        """The prepared file's path and (video, audio) codecs; NotFound if there is none in
        ``scope`` (the unit path of whoever plays it: only a video of its own subtree), Invalid if
        not ready."""
        async with self.sessionmaker() as db:
            row = await db.get(GreetingMedia, media_id)
        if row is None or not row.unit_path.startswith(scope):
            raise NotFound("greeting_media.not_found", id=media_id)
        if row.status != "ready" or not row.path or not row.video_codec:
            raise Invalid("greeting_media.not_ready", id=media_id, status=row.status)
        return os.path.join(self.directory, row.path), (row.video_codec, row.audio_codec)

    async def close(self) -> None:
        await self.playouts.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def sweep(self) -> None:
        """At start: uploads left half-received, and rows left "processing" by a stop, are failed."""
        if os.path.isdir(self.directory):
            for name in os.listdir(self.directory):
                if name.startswith(".upload-") or name.endswith(".part"):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(self.directory, name))
        async with self.sessionmaker.begin() as db:
            rows = (await db.execute(select(GreetingMedia).where(GreetingMedia.status == "processing"))).scalars()
            for row in rows:
                row.status, row.failure = "failed", "server stopped while preparing"


if __name__ == "__main__":
    if len(sys.argv) > 4 and sys.argv[1] == "prepare":
        prepare_main(sys.argv[2:])
    else:
        print("usage: python -m dutycall.media.playout prepare SOURCE TARGET PLAN_JSON", file=sys.stderr)
        sys.exit(2)
